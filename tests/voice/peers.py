"""The called parties of the voice tests, real processes on 127.0.0.1 free ports, stopped by
their own PID: sipp running a scenario of tests/peers/sip/, and a baresip that answers every
call and records what it hears (its ``sndfile`` module writes each call's decoded audio)."""

from __future__ import annotations

import re
import socket
import subprocess
import time
import wave
from collections import Counter
from datetime import datetime
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent.parent / "peers" / "sip"
HOST = "127.0.0.1"


def free_udp_port() -> int:
    """A port free for UDP and TCP (sipp and baresip listen on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((HOST, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((HOST, port))
                except OSError:
                    continue
                return port


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.bind((HOST, port))
        except OSError:
            return True
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Sipp:
    """``sipp -sf SCENARIO`` as the called party (UAS), logging every SIP message."""

    def __init__(self, scenario: str, work: Path) -> None:
        self.scenario = SCENARIOS / f"{scenario}.xml"
        self.port, self.control_port = free_udp_port(), free_udp_port()
        self.messages = work / f"sipp-{scenario}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def trunk(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> Sipp:
        self.process = subprocess.Popen(
            ["sipp", "-sf", str(self.scenario), "-i", HOST, "-p", str(self.port),
             "-cp", str(self.control_port),
             "-nostdin", "-trace_msg", "-message_file", str(self.messages)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not udp_port_taken(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sipp {self.scenario.name} did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def invite_times(self) -> list[float]:
        """When each call's first INVITE arrived (seconds since the epoch), in order."""
        if not self.messages.exists():
            return []
        first: dict[str, float] = {}
        for block in self.messages.read_text(errors="replace").split("\n-----")[0:]:
            stamp = re.search(r"-+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\nUDP message received", block)
            call = re.search(r"^Call-ID:\s*(\S+)", block, re.M | re.I)
            if stamp and call and re.search(r"^INVITE sip:", block, re.M):
                when = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
                first.setdefault(call.group(1), when)
        return sorted(first.values())

    def invites(self) -> Counter[str]:
        """INVITEs received per called number (retransmissions of one counted once)."""
        if not self.messages.exists():
            return Counter()
        text = self.messages.read_text(errors="replace")
        seen: set[tuple[str, str]] = set()
        for block in text.split("message received")[1:]:
            m = re.search(r"^INVITE sip:([^@;]+)@", block, re.M)
            call = re.search(r"^Call-ID:\s*(\S+)", block, re.M | re.I)
            if m and call:
                seen.add((m.group(1), call.group(1)))
        return Counter(number for number, _ in seen)


class Recorder:
    """baresip answering every call to ``numbers`` at once and recording what it hears."""

    def __init__(self, numbers: list[str], work: Path) -> None:
        self.port = free_udp_port()
        self.dir = work / f"recorder-{self.port}"
        self.recordings = self.dir / "rec"
        self.numbers = numbers
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def trunk(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> Recorder:
        self.recordings.mkdir(parents=True)
        silence = self.dir / "silence.wav"  # what it says back: silence, long enough for any call
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(silence), "trim", "0", "300"],
                       check=True)
        rtp = 40000 + (self.port % 500) * 20
        (self.dir / "config").write_text("\n".join([
            "poll_method\tepoll", f"sip_listen\t{HOST}:{self.port}", f"net_interface\t{HOST}",
            "audio_player\taufile,/dev/null", f"audio_source\taufile,{silence}",
            "audio_alert\taufile,/dev/null",
            f"rtp_ports\t{rtp}-{rtp + 19}", "module_path\t/usr/lib/baresip/modules", "module\tg711.so",
            "module\taufile.so", "module\tsndfile.so", f"snd_path\t{self.recordings}",
            "module_app\taccount.so",
            "module_app\tmenu.so", ""]))
        (self.dir / "accounts").write_text("".join(
            f"<sip:{n}@{HOST}:{self.port}>;regint=0;answermode=auto\n" for n in self.numbers))
        log = self.dir / "out.log"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(["baresip", "-f", str(self.dir)], stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while b"baresip is ready" not in log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the recording baresip did not start: {log.read_text(errors='replace')}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def heard(self, calls: int = 1, timeout: float = 10.0) -> list[Path]:
        """The decoded audio of each call, oldest first, once ``calls`` files are complete
        (baresip writes a file's WAV header when its call has closed on its side)."""
        deadline = time.monotonic() + timeout
        while True:
            files = sorted(self.recordings.glob("*-dec.wav"))
            if len(files) >= calls and all(_complete(f) for f in files):
                return files
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(files)} recordings, not {calls} complete ones")
            time.sleep(0.05)


def _complete(path: Path) -> bool:
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() > 0
    except (wave.Error, EOFError):
        return False
