"""What the command modules share: reading files, the --data option, a store for one command."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from hub.config import Settings
from hub.errors import HubError
from hub.store.sqlite import SqliteStore
from hub.wiring import open_store

T = TypeVar("T")


def read_file(path: Path, what: str) -> bytes:
    """The file's bytes, or a ``HubError`` that names it and what it was for."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise HubError(f"cannot read {what} {path}: {exc.strerror}") from exc


def add_data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, metavar="DIR", help="data directory (default: the settings)")


def data_dir(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.data) if getattr(args, "data", None) else settings.data_path


def with_store(
    args: argparse.Namespace, settings: Settings, work: Callable[[SqliteStore], Awaitable[T]]
) -> T:
    """Open the data directory's store, run ``work`` on it, close it."""
    box: list[T] = []

    async def go() -> None:
        store = open_store(data_dir(args, settings))
        await store.open()
        try:
            box.append(await work(store))
        finally:
            await store.close()

    # The result comes back outside asyncio.run: CPython 3.11's runner builds the repr of its
    # main task's result on the way out (python/cpython#112559), which for an import report
    # of 100,000 rows costs ~2 s.
    asyncio.run(go())
    return box[0]
