"""Runs the node-smpp SMSC simulator (tests/peers/smsc/smsc.js) as a child process.

``ensure_installed()`` runs ``npm ci`` once when ``node_modules`` is missing (a fresh clone);
:class:`Smsc` starts the simulator on 127.0.0.1 and a free port, waits for ``READY <port>``,
collects its JSON lines in a thread, and stops it by its own PID.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

SMSC_DIR = Path(__file__).parent / "smsc"


class PeerUnavailable(RuntimeError):
    """node or npm is missing, or npm ci failed."""


def ensure_installed() -> None:
    if (SMSC_DIR / "node_modules" / "smpp" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise PeerUnavailable(
            "the SMSC simulator needs node and npm (node >= 18): install them, then run "
            "`npm ci --prefix tests/peers/smsc`")
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SMSC_DIR, capture_output=True,
                          text=True, timeout=300)
    if done.returncode:
        raise PeerUnavailable(f"`npm ci` in {SMSC_DIR} failed:\n{done.stderr[-2000:]}")


class Smsc:
    """One simulator process. ``args`` are smsc.js switches, e.g. ``["--throttle-every", "10"]``."""

    def __init__(self, *args: str) -> None:
        ensure_installed()
        self.proc = subprocess.Popen(
            ["node", str(SMSC_DIR / "smsc.js"), "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.events: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self._changed = threading.Condition()
        self.port = 0
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            self.stop()
            raise PeerUnavailable(f"SMSC simulator did not print READY: {self.proc.stderr.read()[-2000:]}"
                                  if self.proc.stderr else "SMSC simulator did not start")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("READY "):
                self.port = int(line.split()[1])
                self._ready.set()
                continue
            with self._changed:
                self.events.append(json.loads(line))
                self._changed.notify_all()

    def submits(self, accepted_only: bool = False) -> list[dict[str, Any]]:
        with self._changed:
            subs = [e for e in self.events if e["event"] == "submit"]
        return [e for e in subs if e["status"] == 0] if accepted_only else subs

    def of(self, event: str) -> list[dict[str, Any]]:
        with self._changed:
            return [e for e in self.events if e["event"] == event]

    def wait_submits(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``n`` submit lines were read (the process prints them asynchronously)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(1 for e in self.events if e["event"] == "submit") < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        return self.submits()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._thread.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
