"""API tokens: random, shown once, stored only as a hash, revocable."""

from __future__ import annotations

import hashlib
import secrets

from hub.services.ingest import Caller
from hub.store.base import Store

TOKEN_PREFIX = "caphub_"


def new_token() -> str:
    """A fresh token: 256 random bits, URL-safe, with a prefix that secret scanners can spot."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the store keeps instead of the token. Tokens carry 256 random bits, so a plain
    SHA-256 is enough (no salt or slow hash needed, unlike passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


async def authenticate(store: Store, token: str | None) -> Caller | None:
    if not token:
        return None
    found = await store.account_for_token(token_hash(token))
    if found is None:
        return None
    account, entity = found
    return Caller(account, entity)
