"""The RabbitMQ names, arguments and retry ladder, without RabbitMQ."""

from __future__ import annotations

from hub.broker.topology import RETRY_LADDER_MS, Topology, retry_rung_ms


def test_a_delay_goes_to_the_first_rung_at_least_as_long() -> None:
    assert retry_rung_ms(0) == 0 and retry_rung_ms(-1) == 0
    assert retry_rung_ms(0.001) == 100
    assert retry_rung_ms(1) == 1_000 and retry_rung_ms(1.001) == 2_500
    assert retry_rung_ms(10 ** 9) == RETRY_LADDER_MS[-1]
    assert list(RETRY_LADDER_MS) == sorted(set(RETRY_LADDER_MS))


def test_names_and_dead_letter_arguments() -> None:
    t = Topology("caphub", "prod.")
    assert (t.events_exchange, t.dead_exchange) == ("prod.caphub", "prod.caphub.dead")
    assert t.stage("deliver.sms") == "prod.deliver.sms"
    assert t.dead_queue("deliver.sms") == "prod.deliver.sms.dead"
    assert t.retry_queue("deliver.sms", 2_500) == "prod.deliver.sms.retry.2500"
    assert t.stage_arguments("route") == {"x-dead-letter-exchange": "prod.caphub.dead",
                                          "x-dead-letter-routing-key": "prod.route"}
    # An expired retry goes home through the default exchange, to its own stage only.
    assert t.retry_arguments("route") == {"x-dead-letter-exchange": "",
                                          "x-dead-letter-routing-key": "prod.route"}
