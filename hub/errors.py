"""The one exception hierarchy of cap-hub.

    HubError                   anything cap-hub raises on purpose
     ├── ConfigError           a setting is missing or has a value of the wrong kind
     ├── CapError              a CAP message was refused; carries the findings (problems)
     ├── SignatureError        signing failed (bad key, unsupported algorithm)
     ├── AuthError             the caller is not who it claims or may not do this
     ├── BrokerError           the message broker refused or lost a message
     ├── StoreError            the store could not read or write
     └── DeliveryError         a provider could not deliver; permanent or retry_after

Third-party exceptions are translated at the boundary into the most specific of these,
chained with ``raise ... from exc`` so the cause is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.cap.problems import Problem


class HubError(Exception):
    """Base of every error cap-hub raises on purpose."""


class ConfigError(HubError):
    """A setting is missing, unknown, or of the wrong kind; the message names the key."""


class CapError(HubError):
    """A CAP message was refused; ``problems`` says why, element by element."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class SignatureError(HubError):
    """Signing could not be done (unusable key or certificate, unsupported algorithm)."""


class AuthError(HubError):
    """The caller could not be authenticated or is not allowed to do this."""


class BrokerError(HubError):
    """The broker refused, lost or could not confirm a message."""


class StoreError(HubError):
    """The store could not read or write."""


class DeliveryError(HubError):
    """A provider could not deliver. Permanent errors are not retried."""

    def __init__(self, reason: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
