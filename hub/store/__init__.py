"""The store seam (``hub.store.base``) and its SQLite implementation (``hub.store.sqlite``).

Only the Protocols and their values are imported here, so that importing ``hub.store`` does
not load a database driver; ``from hub.store.sqlite import SqliteStore`` for the
implementation.
"""

from hub.store.base import AuditEntry, Conflict, ImportResult, MemberStore, NewAlert, NotFound, Store

__all__ = ["AuditEntry", "Conflict", "ImportResult", "MemberStore", "NewAlert", "NotFound", "Store"]
