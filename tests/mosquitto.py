"""A real MQTT broker for the tests (Debian's mosquitto) and a subscriber that records messages."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """mosquitto on 127.0.0.1 with its own config. Without `persistent` a restart forgets
    retained messages and sessions (a broker that lost its disk); with it, `stop` saves them
    and a restart brings back subscribers' sessions (their queued messages included).
    `users` adds a password file."""

    def __init__(
        self,
        folder: Path,
        port: int | None = None,
        users: dict | None = None,
        persistent: bool = False,
        tls: dict[str, Path] | None = None,
    ) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.users = users or {}
        self.persistent = persistent
        self.tls = tls  # {"ca": ..., "cert": ..., "key": ...}: TLS only
        self._process: subprocess.Popen | None = None

    def start(self) -> Mosquitto:
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1", "log_dest stderr"]
        if os.getuid() == 0:  # started as root, it would switch to `mosquitto`, who cannot
            lines.append("user root")  # read this test's private folder
        if self.tls:
            lines += [
                f"cafile {self.tls['ca']}", f"certfile {self.tls['cert']}",
                f"keyfile {self.tls['key']}",
            ]  # fmt: skip
        if self.persistent:
            lines += ["persistence true", f"persistence_location {self.folder}/"]
        else:
            lines.append("persistence false")
        if self.users:
            passwords = self.folder / "passwords"
            passwords.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", str(passwords), user, password],
                    check=True, capture_output=True,
                )  # fmt: skip
            passwords.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        config = self.folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        self._process = subprocess.Popen(
            [MOSQUITTO, "-c", str(config)],
            stdout=subprocess.DEVNULL, stderr=(self.folder / "mosquitto.log").open("a"),
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError(f"mosquitto did not start on {self.port}") from None
                time.sleep(0.05)

    def save(self, timeout: float = 10.0) -> None:
        """Write the persistence database now (SIGUSR1), so that a SIGKILL after it keeps
        what was saved: subscribers' sessions, retained messages, queued messages."""
        database = self.folder / "mosquitto.db"
        before = database.stat().st_mtime_ns if database.exists() else None
        self._process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while not database.exists() or database.stat().st_mtime_ns == before:
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not save its database")
            time.sleep(0.05)

    def kill(self) -> None:
        """Dies at once (SIGKILL): nothing saved, connections reset."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        """Killed with SIGTERM: it saves its state (when persistent) and exits."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def make_certificates(folder: Path) -> dict[str, Path]:
    """A test CA and a server certificate for 127.0.0.1 it signed (openssl)."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "2", "-subj", "/CN=vapipe test CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-out",
            "server.crt", "-CAcreateserial", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    return {"ca": folder / "ca.crt", "cert": folder / "server.crt", "key": folder / "server.key"}


class Subscriber:
    """A paho client subscribed to `topic` (QoS 1) that records (topic, payload, retain) in
    arrival order; reconnects on its own. With `persistent`, its session outlives a
    disconnection: the broker keeps QoS 1 messages for it meanwhile."""

    def __init__(
        self,
        port: int,
        topic: str = "#",
        auth: tuple[str, str] | None = None,
        persistent: bool = False,
        tls_ca: Path | None = None,
    ) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Condition()
        self._topic = topic
        self._subscribed = threading.Event()
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-sub-{port}", clean_session=not persistent
        )
        if auth:
            client.username_pw_set(*auth)
        if tls_ca:
            client.tls_set(ca_certs=str(tls_ca))
        client.on_connect = lambda c, *_: c.subscribe(self._topic, qos=1)
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = self._on_message
        client.reconnect_delay_set(0.2, 1)
        client.connect_async("127.0.0.1", port)
        self._client = client

    def __enter__(self) -> Subscriber:
        self._client.loop_start()
        assert self._subscribed.wait(10), "the subscriber could not subscribe"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, message.retain))
            self._lock.notify_all()

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Wait until `predicate(self)` holds (checked at each message)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True
