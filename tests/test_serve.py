"""`cap-hub serve` as a real process: start, answer, stop on SIGTERM, start again on the same
data and still know everything. Every process is stopped by its own PID."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest

from hub.cap import devkeys
from hub.cap.model import format_datetime
from hub.cap.sign import sign
from hub.cli import main

ROOT = Path(__file__).resolve().parent.parent
SENDER = "police@example.be"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def read_until(stream: IO[str], marker: str, timeout: float = 60.0) -> list[str]:
    """Lines of ``stream`` up to and including the first that contains ``marker``. Read by a
    thread: select() on the pipe cannot see lines that an earlier readline already took into
    the stream's buffer (two lines written at once), and would wait for them in vain."""
    lines: list[str] = []
    done = threading.Event()

    def pump() -> None:
        for line in stream:
            lines.append(line)
            if marker in line:
                break
        done.set()

    threading.Thread(target=pump, daemon=True).start()
    if not done.wait(timeout):
        raise AssertionError(f"no {marker!r} within {timeout} s; got {lines}")
    if not lines or marker not in lines[-1]:
        raise AssertionError(f"the server exited before {marker!r}; got {lines}")
    return list(lines)


class Server:
    def __init__(self, data: Path, log: Path) -> None:
        self.data, self.log, self.port = data, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, *extra: str) -> list[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAPHUB_")}
        env["PYTHONPATH"] = str(ROOT)
        env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT dumps every thread's stack to the log
        with self.log.open("a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub", "serve", "--data", str(self.data), "--port", str(self.port),
                 *extra], stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=ROOT)
        assert self.proc.stdout is not None
        try:
            return read_until(self.proc.stdout, "listening on", timeout=45.0)
        except AssertionError as exc:
            # A start that hangs: say where, from the server's own stacks.
            self.proc.send_signal(signal.SIGABRT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            raise AssertionError(f"{exc}\nserver log:\n{self.log.read_text()[-6000:]}") from None

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.close()
        return code

    def close(self) -> None:
        """Make sure the process is gone (teardown): kill it by its PID if it still runs."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def request(self, path: str, data: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", tmp_path / "server.log")
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="module")
def identity() -> tuple[bytes, bytes]:
    return devkeys.new_identity("police", key_type="ec")


def admin(data: Path, *args: str | Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["admin", *map(str, args), "--data", str(data)]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def alert(key_pem: bytes, cert_pem: bytes) -> bytes:
    sent = datetime.now(UTC).replace(microsecond=0)
    doc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
           f"<identifier>serve-1</identifier><sender>{SENDER}</sender><sent>{format_datetime(sent)}</sent>"
           "<status>Actual</status><msgType>Alert</msgType><scope>Public</scope>"
           "<info><language>nl-BE</language><category>Fire</category><event>Brand</event>"
           "<urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>"
           f"<expires>{format_datetime(sent + timedelta(hours=2))}</expires><headline>Rook</headline>"
           "<area><areaDesc>Centrum</areaDesc></area></info></alert>")
    return sign(doc.encode(), key_pem, cert_pem)


def test_first_start_makes_keys_answers_health_and_stops_on_sigterm(server: Server) -> None:
    lines = server.start()
    assert any("created the hub's signing key" in line and str(server.data / "keys") in line
               for line in lines), lines
    assert f"listening on {server.url}" in lines[-1]
    assert (server.data / "keys" / "hub-key.pem").stat().st_mode & 0o077 == 0
    status, body = server.request("/health")
    assert (status, json.loads(body)) == (200, {"store": "ok", "broker": "ok"})
    started = time.monotonic()
    assert server.terminate() == 0
    assert time.monotonic() - started < 5
    assert "Traceback" not in server.log.read_text()


def test_what_was_accepted_survives_a_restart(server: Server, tmp_path: Path, identity: tuple[bytes, bytes],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    key_pem, cert_pem = identity
    cert = tmp_path / "police.pem"
    cert.write_bytes(cert_pem)
    server.start()
    # The admin commands work on the data directory while the server runs.
    admin(server.data, "entity", "add", "police", "--type", "2", "--sender", SENDER, "--cert", cert,
          capsys=capsys)
    admin(server.data, "account", "add", "police", "dispatch", "--role", "coordinator", capsys=capsys)
    token = admin(server.data, "token", "new", "dispatch", capsys=capsys).strip()
    headers = {"Content-Type": "application/cap+xml", "Authorization": f"Bearer {token}"}
    message = alert(key_pem, cert_pem)
    status, ack = server.request("/cap", message, headers)
    assert status == 201, ack
    assert server.terminate() == 0

    lines = server.start()
    assert not any("created" in line for line in lines), lines
    status, body = server.request("/cap", message, headers)  # the same post: a duplicate, same Ack
    assert (status, body) == (200, ack)
    status, body = server.request("/alerts")
    assert status == 200
    assert [(a["identifier"], a["state"]) for a in json.loads(body)["alerts"]] == [("serve-1", "active")]
    assert server.terminate() == 0
    assert token not in server.log.read_text()
