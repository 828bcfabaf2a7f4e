"""AMQP topic pattern matching (``*`` one word, ``#`` zero or more), for the embedded broker."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=256)
def _words(pattern: str) -> tuple[str, ...]:
    return tuple(pattern.split("."))


def matches(pattern: str, topic: str) -> bool:
    return _match(_words(pattern), tuple(topic.split(".")))


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])
