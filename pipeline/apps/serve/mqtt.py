"""MQTT: the service's availability, each camera's state, events and counts (paho-mqtt 2).

Topics, under a prefix (default `vapipe`):
    PREFIX/available        `online` / `offline`, retained; `offline` is also the will, so a
                            crash or a lost connection says so too
    PREFIX/CAMERA/state     JSON, retained (state, fps, latency ...)
    PREFIX/CAMERA/events    each event of the tracking layer, JSON, QoS 1, in order
    PREFIX/CAMERA/counts    JSON of line and zone counts, retained

paho's network thread connects, keeps the connection alive and reconnects with back-off. The
publisher's own thread hands messages to paho: while the broker is away, events wait here in
order (at most `queue_size`; beyond that the oldest are dropped, counted in the metric and the
log), and are published after the reconnection, after paho has re-sent the ones that were in
flight when the connection broke, so the order holds. State and counts keep only their latest
value per camera, and are published again on every connection (a restarted broker may have
lost its retained messages). Nothing here logs or publishes a source URL.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from pipeline.apps.serve.addresses import is_loopback
from pipeline.apps.serve.config import MqttConfig

log = logging.getLogger(__name__)

WINDOW = 100  # events handed to paho and not yet acknowledged, at most
_MIN_DELAY, _MAX_DELAY = 1, 30  # reconnection back-off, seconds


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class MqttPublisher:
    """Publishes to one broker from its own thread; `start`, then `publish_*`, then `close`.

    `on_dropped(n)` is called when events overflow the queue (the service counts them in
    its metrics). `base_dir` resolves relative TLS file paths.
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        on_dropped: Callable[[int], None] = lambda n: None,
        base_dir: Path = Path("."),
        reconnect_delay: tuple[float, float] = (_MIN_DELAY, _MAX_DELAY),
    ) -> None:
        self.config = config
        self.prefix = config.topic_prefix.rstrip("/")
        self._on_dropped = on_dropped
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._events: deque[_Message] = deque()
        self._latest: dict[str, _Message] = {}  # retained topic -> latest value
        self._dirty: dict[str, None] = {}  # retained topics to publish (ordered set)
        self._unacked: set[int] = set()
        self._early_acks: set[int] = set()  # acknowledged before `publish` returned
        self._connected = False
        self._resending = False  # paho is re-sending what was in flight: wait for it
        self._closing = False
        self._close_by = float("inf")
        self._announced_online = False
        self.dropped = 0
        self.published_events = 0
        self._client = self._make_client(base_dir, reconnect_delay)
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)

    # -- the service's side ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    def start(self) -> MqttPublisher:
        host, port = self.config.host, self.config.port
        self._client.connect_async(host, port, keepalive=self.config.keepalive)
        self._client.loop_start()
        self._thread.start()
        log.info("MQTT: publishing to %s:%d under %s/", host, port, self.prefix)
        return self

    def publish_event(self, camera: str, event: dict) -> None:
        message = _Message(f"{self.prefix}/{camera}/events", _json(event), 1, False)
        dropped = 0
        with self._changed:
            self._events.append(message)
            while len(self._events) > self.config.queue_size:
                self._events.popleft()
                dropped += 1
            self._changed.notify()
        if dropped:
            self._count_dropped(dropped)

    def publish_state(self, camera: str, state: dict) -> None:
        self._retain(f"{self.prefix}/{camera}/state", _json(state))

    def publish_counts(self, camera: str, counts: dict) -> None:
        self._retain(f"{self.prefix}/{camera}/counts", _json(counts))

    def forget_camera(self, camera: str) -> None:
        """Clear a removed camera's retained topics (an empty retained message deletes one)."""
        for kind in ("state", "counts"):
            self._retain(f"{self.prefix}/{camera}/{kind}", b"")

    @property
    def retained_topics(self) -> list[str]:
        """The retained topics kept to publish again after a reconnect (a removed camera's go
        once their clearing is sent)."""
        with self._lock:
            return list(self._latest)

    def pending(self) -> int:
        """Events not yet acknowledged by the broker."""
        with self._lock:
            return len(self._events) + len(self._unacked)

    def close(self, timeout: float = 3.0) -> None:
        """Publish what is queued (within `timeout` while connected), say `offline`,
        disconnect, and stop both threads."""
        with self._changed:
            self._closing = True
            self._close_by = time.monotonic() + timeout
            self._changed.notify_all()
        self._thread.join(timeout + 1.0)
        left = self.pending()
        if left:
            log.warning("MQTT: %d events not published (broker unreachable at shutdown)", left)
        self._client.disconnect()
        self._client.loop_stop()

    # -- paho's callbacks (its network thread) -----------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT: the broker refused the connection: %s", reason_code)
            return
        with self._changed:
            self._connected = True
            self._announced_online = False  # the will may have said `offline` meanwhile
            self._resending = bool(self._unacked)
            for topic in self._latest:
                self._dirty[topic] = None
            self._changed.notify_all()
        log.info("MQTT: connected to %s:%d", self.config.host, self.config.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._changed:
            was, self._connected = self._connected, False
            self._changed.notify_all()
        if was and not self._closing:
            log.warning("MQTT: connection lost (%s); reconnecting", reason_code)

    def _on_connect_fail(self, client, userdata) -> None:
        log.debug("MQTT: cannot reach %s:%d", self.config.host, self.config.port)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._changed:
            if mid in self._unacked:
                self._unacked.discard(mid)
            else:
                self._early_acks.add(mid)
            if not self._unacked:
                self._resending = False
            self._changed.notify_all()

    # -- the publisher's thread --------------------------------------------------------------

    def _run(self) -> None:
        with self._changed:
            while True:
                message = self._next()
                if message is None:
                    if self._closing and (
                        not self._connected or self._drained() or time.monotonic() > self._close_by
                    ):
                        break
                    self._changed.wait(0.5)
                    continue
                self._changed.release()
                try:
                    info = self._client.publish(
                        message.topic, message.payload, message.qos, message.retain
                    )
                except (ValueError, TypeError, RuntimeError, OSError) as error:
                    # One bad message (a topic paho refuses) must not end the publisher.
                    log.warning("MQTT: cannot publish to %r: %s; dropped", message.topic, error)
                    continue
                finally:
                    self._changed.acquire()
                if message.qos:
                    if info.mid in self._early_acks:
                        self._early_acks.discard(info.mid)
                    else:
                        self._unacked.add(info.mid)
                if message.qos and message.topic.endswith("/events"):
                    self.published_events += 1
            self._say_offline()

    def _next(self) -> _Message | None:
        """The next message to hand to paho (lock held), or None to wait."""
        if not self._connected or self._resending or len(self._unacked) >= WINDOW:
            return None
        if not self._announced_online:
            self._announced_online = True
            return _Message(self._available, b"online", 1, True)
        if self._dirty:
            topic = next(iter(self._dirty))
            del self._dirty[topic]
            message = self._latest[topic]
            if not message.payload:  # a topic cleared: once paho has it (resent until
                del self._latest[topic]  # acknowledged), nothing is left to restore
            return message
        if self._events:
            return self._events.popleft()
        return None

    def _drained(self) -> bool:
        return not (self._events or self._dirty or self._unacked)

    def _say_offline(self) -> None:
        """A clean shutdown sends no will: say `offline` ourselves (lock held)."""
        if not self._connected:
            return
        self._changed.release()
        try:
            info = self._client.publish(self._available, b"offline", 1, True)
            info.wait_for_publish(2.0)
        except (RuntimeError, ValueError):
            pass  # the connection went meanwhile: the will says it
        finally:
            self._changed.acquire()

    def _retain(self, topic: str, payload: bytes) -> None:
        with self._changed:
            self._latest[topic] = _Message(topic, payload, 1, True)
            self._dirty[topic] = None
            self._changed.notify()

    def _count_dropped(self, n: int) -> None:
        first = self.dropped == 0
        self.dropped += n
        self._on_dropped(n)
        if first or self.dropped % 1000 < n:
            log.warning(
                "MQTT: broker unreachable and %d events queued: dropping the oldest "
                "(%d dropped so far)", self.config.queue_size, self.dropped,
            )  # fmt: skip

    # -- the client --------------------------------------------------------------------------

    @property
    def _available(self) -> str:
        return f"{self.prefix}/available"

    def _make_client(self, base_dir: Path, delay: tuple[float, float]) -> paho.Client:
        config = self.config
        client_id = config.client_id or f"vapipe-{socket.gethostname()}-{os.getpid()}"
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        client.will_set(self._available, b"offline", qos=1, retain=True)
        password = config.password or os.environ.get("VAPIPE_MQTT_PASSWORD")
        if config.username:
            client.username_pw_set(config.username, password)
            if password and not config.tls and not is_loopback(config.host):
                log.warning(
                    "MQTT: the password for %s goes to %s:%d in clear text; set [mqtt] tls = "
                    "true (the broker must offer TLS)", config.username, config.host, config.port,
                )  # fmt: skip
        if config.tls:

            def path(name: str | None) -> str | None:
                return str((base_dir / name).resolve()) if name else None

            client.tls_set(
                ca_certs=path(config.ca_file), certfile=path(config.cert_file),
                keyfile=path(config.key_file), cert_reqs=ssl.CERT_REQUIRED,
            )  # fmt: skip
            client.tls_insecure_set(config.tls_insecure)
        client.reconnect_delay_set(*delay)
        # paho queues nothing itself beyond the window handed to it.
        client.max_inflight_messages_set(WINDOW + 2)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        return client
