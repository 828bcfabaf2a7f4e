"""What the SMPP client raises; every one is a :class:`hub.errors.DeliveryError`.

    DeliveryError (hub.errors)
     └── SmppError            base; ``status`` is the SMPP command_status when there is one
          ├── BindRefused     the SMSC answered the bind with an error (wrong credentials, ...)
          ├── ConnectionLost  the link broke or stopped answering; transient
          └── SubmitRefused   a submit_sm_resp with an error; permanent or not per the status

``ConnectionLost`` and ``SubmitRefused`` raised by ``submit`` carry ``message_ids`` (one per
part: the SMSC's id when that part got a positive submit_sm_resp, else None) and the
concatenation ``ref`` used, so the caller can resubmit exactly the parts that are missing
(``known_ids=err.message_ids, ref=err.ref``): nothing is sent twice, nothing is lost.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.errors import DeliveryError
from hub.outputs.smpp.pdu import Status, status_name

# Statuses after which sending the same submit_sm again cannot succeed.
PERMANENT = frozenset({
    Status.ESME_RINVMSGLEN, Status.ESME_RINVPRTFLG, Status.ESME_RINVREGDLVFLG,
    Status.ESME_RINVSRCADR, Status.ESME_RINVDSTADR, Status.ESME_RINVSERTYP, Status.ESME_RINVNUMDESTS,
    Status.ESME_RINVESMCLASS, Status.ESME_RINVSRCTON, Status.ESME_RINVSRCNPI, Status.ESME_RINVDSTTON,
    Status.ESME_RINVDSTNPI, Status.ESME_RINVSCHED, Status.ESME_RINVEXPIRY, Status.ESME_RX_P_APPN,
    Status.ESME_RX_R_APPN, Status.ESME_RINVOPTPARAMVAL, Status.ESME_ROPTPARNOTALLWD,
    Status.ESME_RINVPARLEN,
})
# Statuses that ask the ESME to slow down and send the same PDU again.
SLOW_DOWN = frozenset({Status.ESME_RTHROTTLED, Status.ESME_RMSGQFUL})


class SmppError(DeliveryError):
    """Base of the SMPP client's errors."""

    def __init__(self, reason: str, *, permanent: bool, retry_after: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(reason, permanent=permanent, retry_after=retry_after)
        self.status = status


class BindRefused(SmppError):
    """bind_transceiver_resp with an error status: credentials or SMSC set-up; retry much later."""

    def __init__(self, status: int) -> None:
        super().__init__(f"SMSC refused the bind: {status_name(status)}", permanent=False,
                         retry_after=30.0, status=status)


class _WithParts(SmppError):
    message_ids: list[str | None]
    ref: int | None

    def with_parts(self, message_ids: Sequence[str | None], ref: int | None) -> _WithParts:
        self.message_ids = list(message_ids)
        self.ref = ref
        return self


class ConnectionLost(_WithParts):
    """The connection broke, was unbound, or stopped answering. Parts without an id were
    not acknowledged and must be submitted again on a new connection."""

    def __init__(self, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(reason, permanent=False, retry_after=retry_after)
        self.message_ids = []
        self.ref = None


class SubmitRefused(_WithParts):
    """A submit_sm_resp with an error status (or a submit we refuse to send, e.g. a bad number)."""

    def __init__(self, status: int, detail: str = "", retry_after: float | None = None) -> None:
        permanent = status in PERMANENT
        reason = status_name(status) + (f": {detail}" if detail else "")
        super().__init__(reason, permanent=permanent,
                         retry_after=None if permanent else (retry_after or 5.0), status=status)
        self.message_ids = []
        self.ref = None
