"""The store every test here starts from: a fresh SQLite store in the test's folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.store.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore.in_data_dir(tmp_path)
    await s.open()
    yield s
    await s.close()
