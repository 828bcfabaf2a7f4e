"""The SMS receipts index (``delivery_messages``): receipts correlated in memory (the part's
own id known, the delivery too) and receipts looked up by every reading of their id."""

from __future__ import annotations

from hub.store.sqlite import SqliteStore  # the ``store`` fixture: tests/store/conftest.py


async def index(store: SqliteStore) -> list[tuple[str, int, str | None]]:
    rows = await store._read(
        "SELECT message_id, delivery_id, state FROM delivery_messages ORDER BY message_id")
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_a_correlated_receipt_ends_a_one_part_sms(store: SqliteStore) -> None:
    await store.add_message_ids([(1, "ee6b2800", 1, 1)])
    assert await store.message_receipts([(("ee6b2800",), 1, 1, 1, True, None)]) == [(1, True, None, 1)]
    assert await index(store) == [("ee6b2800", 1, "delivered")]


async def test_a_receipt_ahead_of_the_index_write_is_kept_by_it(store: SqliteStore) -> None:
    assert await store.message_receipts([(("7",), 3, 1, 1, False, "UNDELIV err:001")]) == \
        [(3, False, "UNDELIV err:001", 1)]
    await store.add_message_ids([(3, "7", 1, 1)])  # the worker's write, late: the receipt's row stays
    assert await index(store) == [("7", 3, "failed")]


async def test_a_repeated_receipt_reports_the_stored_outcome_again(store: SqliteStore) -> None:
    """Recording a batch again (its outcomes were not published) tells the same; a second
    receipt for a part never overrides its first final state."""
    await store.add_message_ids([(1, "a1", 1, 1)])
    failed = (("a1",), 1, 1, 1, False, "UNDELIV")
    assert await store.message_receipts([failed]) == [(1, False, "UNDELIV", 1)]
    assert await store.message_receipts([failed]) == [(1, False, "UNDELIV", 1)]
    assert await store.message_receipts([(("a1",), 1, 1, 1, True, None)]) == [(1, False, "UNDELIV", 1)]


async def test_a_multipart_sms_ends_with_its_last_part(store: SqliteStore) -> None:
    await store.add_message_ids([(5, "b1", 1, 2), (5, "b2", 2, 2)])
    assert await store.message_receipts([(("b1",), 5, 1, 2, True, None)]) == []
    assert await store.message_receipts([(("b2",), 5, 2, 2, True, None)]) == [(5, True, None, 2)]


async def test_uncorrelated_receipts_find_any_reading_of_their_id(store: SqliteStore) -> None:
    await store.add_message_ids([(1, "ee6b2800", 1, 1), (2, "4000000001", 1, 1)])
    found = await store.message_receipts([
        (("4000000000", "ee6b2800", "274877906944"), None, 0, 0, True, None),
        (("ee6b2801", "3988334593"), None, 0, 0, True, None),  # nothing of its readings indexed
        (("zz9",), None, 0, 0, True, None),  # unknown: ignored
    ])
    assert found == [(1, True, None, 1)]
