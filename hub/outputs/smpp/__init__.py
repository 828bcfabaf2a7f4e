"""An SMPP 3.4 ESME client of our own: PDU codec, receipts, async session and a pool of binds.

Written here rather than taken from PyPI: see issue 6 ("Library choice"). Modules:
``pdu`` (pure codec), ``receipts`` (pure parsing and correlation), ``receipt_queue``
(receipts held for the sender), ``errors``, ``pending`` (requests awaiting a response),
``session`` (one transceiver bind on asyncio streams), ``bulk`` (one text to many numbers),
``pool`` (several binds as one).
"""

from hub.outputs.smpp.errors import BindRefused, ConnectionLost, SmppError, SubmitRefused
from hub.outputs.smpp.pool import Pool
from hub.outputs.smpp.receipts import Correlator, Receipt, parse_receipt
from hub.outputs.smpp.session import SmppSession

__all__ = [
    "BindRefused", "ConnectionLost", "Correlator", "Pool", "Receipt", "SmppError", "SmppSession",
    "SubmitRefused", "parse_receipt",
]
