"""Driving the real RTSP server (`rtsp_server.py`) from the tests: start, kill, restart, stall."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

SERVER = Path(__file__).with_name("rtsp_server.py")
# Debian's Python, where python3-gi and the GStreamer RTSP server bindings are installed.
SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def looped(src: Path, dst: Path, times: int = 10) -> Path:
    """`src` repeated `times` times into `dst`, without re-encoding (ffmpeg -c copy)."""
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", str(times - 1), "-i", str(src),
         "-c", "copy", "-an", str(dst)],
        check=True,
    )  # fmt: skip
    return dst


class RtspServer:
    """A GStreamer RTSP server process on 127.0.0.1 serving `mounts` (name -> H.264 MP4)."""

    def __init__(self, mounts: dict[str, Path], port: int | None = None) -> None:
        self.mounts = mounts
        self.port = port or free_port()
        self._process: subprocess.Popen | None = None
        self.sessions = 0  # RTSP sessions set up (streams played), since `start`

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def start(self) -> RtspServer:
        args = [f"{name}={path}" for name, path in self.mounts.items()]
        self._process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self._process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"RTSP server did not start: {line}{self._process.stderr.read()}")
        threading.Thread(target=self._count_sessions, args=(self._process,), daemon=True).start()
        deadline = time.monotonic() + 10
        while True:  # listening
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _count_sessions(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            if line.strip() == "session":
                self.sessions += 1

    def kill(self) -> None:
        """Dies at once, as a camera losing power: connections are reset."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def pause(self) -> None:
        """Stops sending without closing any connection (SIGSTOP)."""
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self._process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Kills the server, paused or not."""
        if self._process is not None:
            self.resume()
        self.kill()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
