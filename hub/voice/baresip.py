"""One call line: a baresip user agent process, driven over its ``ctrl_tcp`` JSON interface.

Each line is its own ``baresip -f DIR`` with a config directory the hub writes (``config``,
``accounts``): SIP and control sockets on free ports of the bind address, its own slice of
RTP ports, the modules it needs and no sound card (``aufile`` plays the rendered WAV; what
the called party says is thrown away). The control protocol is netstrings of JSON::

    → {"command": "dial", "params": "sip:+32...@trunk;user=phone", "token": "7"}
    ← {"response": true, "ok": true, "data": "", "token": "7"}
    ← {"event": true, "type": "CALL_ESTABLISHED", "id": "...", "param": "..."}

A line makes one call at a time: ``ausrc aufile,FILE`` (this call's audio), ``dial URI``,
then the events: CALL_RINGING, CALL_ESTABLISHED, CALL_DTMF_START (a digit, RFC 4733 or SIP
INFO), CALL_CLOSED with its reason ("486 Busy Here"; "end of file" when the message was
played to its end, since baresip hangs up when its audio source ends). Our ring timeout and
the longest call are enforced here with ``hangup`` (a CANCEL before the answer, a BYE after).

A process that dies (or whose control socket closes) during a call raises :class:`UaDied`,
saying whether the call had been answered; the caller restarts the line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.errors import HubError
from hub.voice.calls import Gate

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0  # seconds a fresh process has to open its control socket
COMMAND_TIMEOUT = 5.0
CLOSE_TIMEOUT = 5.0  # seconds to wait for CALL_CLOSED after our hangup
REGISTER_TIMEOUT = 10.0  # seconds a line has to register at the registrar
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REFUSED = re.compile(r"reg: \S+: [3-6][0-9]{2} ")
OUTPUT_KEPT = 4096  # bytes of the process's output kept for error messages
_DEAD: dict[str, Any] = {"type": "DEAD"}


class UaError(HubError):
    """A user agent could not be started or refused a command."""


class UaDied(UaError):
    """The user agent stopped during a call; ``seconds`` of it had been answered (0: not)."""

    def __init__(self, message: str, *, established: bool, seconds: float) -> None:
        super().__init__(message)
        self.established = established
        self.seconds = seconds


@dataclass(frozen=True)
class LineConfig:
    """What every line shares. ``account`` is baresip's accounts line (AOR and parameters)."""

    binary: str
    bind: str
    account: str
    work_dir: Path
    rtp_ports: tuple[int, int] = (20000, 29999)
    ports_per_line: int = 20
    registrar: str = ""  # when set, a line is ready once registered there


@dataclass
class RawCall:
    """What the user agent reported about one call."""

    established: bool
    seconds: float
    reason: str
    timed_out: bool = False
    digits: str = ""
    events: list[str] = field(default_factory=list)
    cancelled: bool = False  # the gate said no: never dialled


_HANDED_OUT: set[int] = set()  # ports given to lines of this process: the OS may offer one twice


def free_port(host: str) -> int:
    """A port free for both UDP and TCP on ``host`` (SIP listens on both), not handed to
    another line of this process before (lines start together, before they bind)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            if port in _HANDED_OUT:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
        if len(_HANDED_OUT) > 20_000:
            _HANDED_OUT.clear()
        _HANDED_OUT.add(port)
        return port
    raise UaError(f"no free port on {host}")


def netstring(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return str(len(body)).encode() + b":" + body + b","


def parse_netstrings(buf: bytearray) -> list[dict[str, Any]]:
    """Complete netstrings taken from the front of ``buf`` (what is left stays)."""
    out: list[dict[str, Any]] = []
    while True:
        colon = buf.find(b":")
        if colon < 0:
            return out
        head = bytes(buf[:colon])
        if not head.isdigit() or len(head) > 9:
            # Not the bytes themselves: they may hold a dialled number.
            raise UaError(f"control socket: a netstring length of {len(head)} bytes that is not a number")
        length = int(head)
        end = colon + 1 + length
        if len(buf) < end + 1:
            return out
        body = bytes(buf[colon + 1:end])
        if buf[end:end + 1] != b",":
            raise UaError("control socket: a netstring without its comma")
        del buf[:end + 1]
        out.append(json.loads(body))


class BaresipLine:
    """One baresip process, one call at a time."""

    def __init__(self, index: int, config: LineConfig) -> None:
        self.index = index
        self.config = config
        self.dir = config.work_dir / f"line-{index}"
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._token = 0
        self._output = bytearray()
        self._ready = asyncio.Event()
        self.in_call = False  # between dial and CALL_CLOSED, for tests and the bench
        self.starts = 0
        # Ids of this line's earlier calls: their late events must not end the next call.
        self._ended: collections.deque[str] = collections.deque(maxlen=16)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None and self._writer is not None

    def _write_config(self, sip_port: int, ctrl_port: int) -> None:
        low, high = self.config.rtp_ports
        first = low + self.index * self.config.ports_per_line
        if first + self.config.ports_per_line - 1 > high:
            raise UaError(f"line {self.index}: rtp_ports {low}-{high} too small for this many lines")
        self.dir.mkdir(parents=True, exist_ok=True)
        bind = self.config.bind
        (self.dir / "config").write_text("\n".join([
            "poll_method\tepoll",
            f"sip_listen\t{bind}:{sip_port}",
            f"net_interface\t{bind}",
            "audio_player\taufile,/dev/null",
            "audio_source\taufile,/dev/null",
            "audio_alert\taufile,/dev/null",
            f"rtp_ports\t{first}-{first + self.config.ports_per_line - 1}",
            "module_path\t/usr/lib/baresip/modules",
            "module\tg711.so",
            "module\taufile.so",
            "module_app\taccount.so",
            "module_app\tmenu.so",
            "module_app\tctrl_tcp.so",
            f"ctrl_tcp_listen\t{bind}:{ctrl_port}",
            "",
        ]))
        (self.dir / "accounts").write_text(self.config.account + "\n")

    async def start(self) -> None:
        """Start the process and connect to its control socket; a process that exits at once
        (a port taken meanwhile by someone else) is tried again on other ports."""
        for attempt in range(3):
            try:
                await self._start()
                return
            except UaError:
                exited = self.process is not None and self.process.returncode is not None
                await self.stop()
                if attempt == 2 or not exited:
                    raise

    async def _start(self) -> None:
        bind = self.config.bind
        sip_port, ctrl_port = free_port(bind), free_port(bind)
        self._write_config(sip_port, ctrl_port)
        self._output.clear()
        self._ready.clear()
        self._events = asyncio.Queue()
        try:
            self.process = await asyncio.create_subprocess_exec(
                self.config.binary, "-f", str(self.dir), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        except OSError as exc:
            raise UaError(f"cannot run the SIP user agent {self.config.binary!r}: {exc.strerror}") from exc
        self.starts += 1
        self._tasks = [asyncio.create_task(self._drain_output())]
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while True:
            if self.process.returncode is not None:
                raise UaError(f"line {self.index}: baresip exited at start: {self.output_tail()}")
            try:
                if self._ready.is_set():
                    self._reader, self._writer = await asyncio.open_connection(bind, ctrl_port)
                    break
            except OSError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise UaError(f"line {self.index}: baresip not ready within {START_TIMEOUT:.0f} s: "
                              f"{self.output_tail()}")
            await asyncio.sleep(0.02)
        self._tasks.append(asyncio.create_task(self._read_control()))
        if self.config.registrar:
            await self._registered()

    async def _registered(self) -> None:
        """Wait until the account is registered (``reginfo`` says OK); UaError when it is not
        within REGISTER_TIMEOUT, with what the registrar answered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REGISTER_TIMEOUT
        status = ""
        while loop.time() < deadline:
            answer = await self.command("reginfo")
            status = _ANSI.sub("", str(answer.get("data", "")))
            if re.search(r"\sOK\s", status):
                return
            if _REFUSED.search(self.output_tail()):
                break  # the registrar answered no: no point waiting
            await asyncio.sleep(0.1)
        lines = [ln.strip() for ln in status.splitlines() if ln.strip() and not ln.startswith("---")]
        log.error("line %d: not registered at %s", self.index, self.config.registrar)
        raise UaError(f"line {self.index}: not registered at {self.config.registrar} (refused, or no "
                      f"answer within {REGISTER_TIMEOUT:.0f} s): {' | '.join(lines)[-200:]} | "
                      f"{self.output_tail()}")

    def output_tail(self) -> str:
        text = _ANSI.sub("", self._output.decode(errors="replace")).replace("\r", "\n")
        lines = [ln for ln in text.splitlines() if ln.strip() and "audio=" not in ln]
        return " | ".join(lines[-4:])

    async def _drain_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while chunk := await self.process.stdout.read(4096):
            self._output += chunk
            if b"init failed" in self._output:
                continue  # never ready: start() sees the exit or times out
            if b"baresip is ready" in self._output:
                self._ready.set()
            del self._output[:-OUTPUT_KEPT]

    async def _read_control(self) -> None:
        assert self._reader is not None
        buf = bytearray()
        try:
            while chunk := await self._reader.read(65536):
                buf += chunk
                for msg in parse_netstrings(buf):
                    if msg.get("response"):
                        fut = self._pending.pop(str(msg.get("token")), None)
                        if fut is not None and not fut.done():
                            fut.set_result(msg)
                    elif msg.get("event"):
                        self._events.put_nowait(msg)
        except (OSError, ValueError, UaError) as exc:
            log.warning("line %d: control socket failed: %s", self.index, exc)
        finally:
            self._close_writer()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(UaError(f"line {self.index}: control socket closed"))
            self._pending.clear()
            self._events.put_nowait(_DEAD)

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        """Send one command; its response (``ok``, ``data``)."""
        writer = self._writer
        if writer is None:
            raise UaError(f"line {self.index}: not connected")
        self._token += 1
        token = str(self._token)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[token] = fut
        writer.write(netstring({"command": command, "params": params, "token": token}))
        try:
            return await asyncio.wait_for(fut, COMMAND_TIMEOUT)
        except TimeoutError:
            self._pending.pop(token, None)
            raise UaError(f"line {self.index}: no answer to {command} within {COMMAND_TIMEOUT:.0f} s") \
                from None

    async def call(self, uri: str, audio: Path, *, ring_timeout: float, max_seconds: float,
                   gate: Gate | None = None) -> RawCall:
        """Dial ``uri`` playing ``audio``; returns when the call has closed. ``gate`` is
        awaited right before the dial (with the audio set), and may call it off."""
        loop = asyncio.get_running_loop()
        while not self._events.empty():  # nothing of an earlier call belongs to this one
            if self._events.get_nowait() is _DEAD:
                raise UaDied(f"line {self.index}: user agent stopped", established=False, seconds=0.0)
        answer = await self.command("ausrc", f"aufile,{audio}")
        if not answer.get("ok") or "failed" in str(answer.get("data", "")):
            raise UaError(f"line {self.index}: could not set the audio: {answer.get('data')}")
        if gate is not None and not await gate():
            return RawCall(False, 0.0, "cancelled", cancelled=True)
        self.in_call = True
        try:
            return await self._dial(uri, ring_timeout, max_seconds, loop)
        except asyncio.CancelledError:
            # our caller stopped waiting (a failed batch, a stop): end the call, or it would ring
            # or play on with nobody enforcing the limits, while the line dials the next number
            with contextlib.suppress(UaError):
                await self.command("hangup")
            raise
        finally:
            self.in_call = False

    async def _dial(self, uri: str, ring_timeout: float, max_seconds: float,
                    loop: asyncio.AbstractEventLoop) -> RawCall:
        answer = await self.command("dial", uri)
        if not answer.get("ok"):
            return RawCall(False, 0.0, f"dial refused: {answer.get('data') or 'invalid request'}")
        started = loop.time()
        deadline = started + ring_timeout
        established_at: float | None = None
        call_id: str | None = None
        timed_out = hung_up = False
        digits: list[str] = []
        seen: list[str] = []
        while True:
            try:
                event = await asyncio.wait_for(self._events.get(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                if hung_up:
                    raise UaDied(f"line {self.index}: the call did not close after hangup",
                                 established=established_at is not None,
                                 seconds=loop.time() - (established_at or loop.time())) from None
                timed_out, hung_up = established_at is None, True
                await self.command("hangup")
                deadline = loop.time() + CLOSE_TIMEOUT
                continue
            kind = str(event.get("type"))
            if event is _DEAD:
                raise UaDied(f"line {self.index}: user agent stopped during a call",
                             established=established_at is not None,
                             seconds=loop.time() - (established_at or loop.time()))
            if event.get("class") != "call" and kind not in ("CALL_DTMF_START",):
                continue
            eid = str(event.get("id") or "")
            if eid != call_id and eid in self._ended:
                continue  # a late event of an earlier call, seen before this call's own
            if call_id is None and eid:
                call_id = eid
                self._ended.append(call_id)  # whatever ends this call, its stragglers are skipped
            elif eid and eid != call_id:
                continue  # a late event of an earlier call
            seen.append(kind)
            if kind == "CALL_ESTABLISHED" and established_at is None:
                established_at = loop.time()
                if not hung_up:
                    deadline = established_at + max_seconds
            elif kind == "CALL_DTMF_START":
                digits.append(str(event.get("param", "")))
            elif kind == "CALL_CLOSED":
                seconds = loop.time() - established_at if established_at is not None else 0.0
                return RawCall(established_at is not None, seconds, str(event.get("param", "")),
                               timed_out, "".join(digits), seen)

    async def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and its tasks."""
        self._close_writer()
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 2.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _close_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    async def restart(self) -> None:
        await self.stop()
        await self.start()


def account_line(caller: str, *, domain: str, registrar: str = "", username: str = "", password: str = "",
                 outbound_proxy: str = "", display: str = "") -> str:
    """baresip's accounts line: the caller number as the user of the AOR, so the called party
    sees it; registered at ``registrar`` when one is set; digest credentials; outbound proxy."""
    host = registrar or domain
    name = f'"{display}" ' if display else ""
    params: list[str] = [f"regint={3600 if registrar else 0}", "answermode=manual"]
    if username:
        params.append(f"auth_user={username}")
    if password:
        params.append(f"auth_pass={password}")
    if outbound_proxy:
        proxy = outbound_proxy if outbound_proxy.startswith("sip:") else f"sip:{outbound_proxy}"
        params.append(f'outbound="{proxy};lr"')
    return f"{name}<sip:{caller}@{host}>;" + ";".join(params)


def lines_alive(lines: Sequence[BaresipLine]) -> int:
    return sum(1 for line in lines if line.alive)
