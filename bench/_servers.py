"""Helpers shared by the HTTP bench scripts: free ports, servers in their own processes,
the `cap-hub` command line and the temporary folder's clean-up. Nothing runs on import."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cap_hub_argv() -> list[str]:
    """The venv's `cap-hub` script, or `python -m hub` where it is not installed."""
    cap_hub = Path(sys.executable).parent / "cap-hub"
    return [str(cap_hub)] if cap_hub.exists() else [sys.executable, "-m", "hub"]


def finish(tmp: Path, keep: bool, servers: Sequence[Server] = ()) -> None:
    """Stop the run's servers (the last started first), then remove its temporary folder, or
    say where it was kept."""
    for server in reversed(servers):
        server.stop()
    if keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


class Server:
    """A server in its own process, stopped by its own PID (terminate, wait, kill if needed)."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path) -> None:
        self.name, self.port, self.log = name, port, log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /health within {timeout:g} s:\n{self.tail()}")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process and of every process it started (the
        ingest worker processes, when ``ingest.processes`` asks for them), all threads,
        from /proc; None elsewhere."""
        stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, CPU seconds)
        for entry in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = entry.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            ticks = int(fields[11]) + int(fields[12])
            stats[int(entry.parent.name)] = (int(fields[1]), ticks / os.sysconf("SC_CLK_TCK"))
        if self.proc.pid not in stats:
            return None
        total, family = 0.0, {self.proc.pid}
        for pid in sorted(stats, key=lambda p: (p not in family, p)):  # parents are older: lower pids
            parent, seconds = stats[pid]
            if pid in family or parent in family:
                family.add(pid)
                total += seconds
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._out.close()

    def tail(self, lines: int = 20) -> str:
        if not self._out.closed:
            self._out.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
