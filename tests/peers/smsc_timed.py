"""The SMSC simulator with the arrival time (``time.time()``) of each JSON line in ``"t"``.

smsc.js prints no timestamps; this reader stamps each line as it reads it from the pipe,
which is close enough for rate windows and "sent after the Cancel" checks."""

from __future__ import annotations

import json
import time

from tests.peers.smsc_peer import Smsc


class TimedSmsc(Smsc):
    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("READY "):
                self.port = int(line.split()[1])
                self._ready.set()
                continue
            event = json.loads(line)
            event["t"] = time.time()
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()
