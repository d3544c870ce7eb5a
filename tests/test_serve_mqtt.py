"""The MQTT publisher against a real broker (Debian's mosquitto, started here on a free
loopback port) and a paho subscriber: topics, retained state, the will, order across a broker
restart, the bounded queue, authentication."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
from conftest import SSD_XML
from mosquitto import Mosquitto, Subscriber, make_certificates

from pipeline.apps.serve.config import MqttConfig
from pipeline.apps.serve.metrics import ServiceMetrics
from pipeline.apps.serve.mqtt import MqttPublisher

FAST = (0.2, 1.0)  # reconnection back-off for the tests, seconds


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(tmp_path / "broker") as broker:
        yield broker


def publisher(broker, **options) -> MqttPublisher:
    config = MqttConfig(host="127.0.0.1", port=broker.port, **options)
    return MqttPublisher(config, reconnect_delay=FAST)


def numbers(subscriber: Subscriber, topic: str) -> list[int]:
    return [json.loads(payload)["n"] for payload in subscriber.on(topic)]


def test_mosquitto_is_installed():
    assert shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto"), (
        "mosquitto missing: run .ci/system-packages"
    )


def test_state_counts_and_events_go_to_their_topics_and_offline_is_said_at_close(broker):
    with Subscriber(broker.port) as sub:
        mqtt = publisher(broker, topic_prefix="site/vapipe").start()
        mqtt.publish_state("gate", {"state": "streaming"})
        mqtt.publish_counts("gate", {"lines": {"entry": {"in": 1, "out": 0}}})
        for n in range(5):
            mqtt.publish_event("gate", {"n": n, "type": "line_cross"})
        assert sub.wait_for(lambda s: len(s.on("site/vapipe/gate/events")) == 5)
        assert sub.wait_for(lambda s: s.on("site/vapipe/gate/counts"))
        mqtt.close()
        assert sub.wait_for(lambda s: s.on("site/vapipe/available")[-1:] == [b"offline"])
    assert sub.on("site/vapipe/available") == [b"online", b"offline"]
    assert json.loads(sub.on("site/vapipe/gate/state")[0]) == {"state": "streaming"}
    assert numbers(sub, "site/vapipe/gate/events") == [0, 1, 2, 3, 4]
    # Retained: a client that subscribes later gets the latest state, counts and availability.
    with Subscriber(broker.port) as late:
        assert late.wait_for(lambda s: len({t for t, _, _ in s.messages}) == 3)
        assert all(retain for _, _, retain in late.messages)
        assert late.on("site/vapipe/available") == [b"offline"]
        assert late.on("site/vapipe/gate/events") == [], "events are not retained"


def test_a_removed_camera_s_retained_topics_are_cleared_and_not_kept(broker):
    mqtt = publisher(broker).start()
    try:
        for camera in ("gate", "old"):
            mqtt.publish_state(camera, {"state": "streaming"})
            mqtt.publish_counts(camera, {"lines": {}})
        mqtt.forget_camera("old")
        deadline = time.monotonic() + 10
        while ("vapipe/old/state" in mqtt.retained_topics or mqtt.pending()) and (
            time.monotonic() < deadline
        ):  # the clearing sent and acknowledged
            time.sleep(0.05)
        assert sorted(mqtt.retained_topics) == ["vapipe/gate/counts", "vapipe/gate/state"]
        with Subscriber(broker.port) as sub:  # the broker says what it retains
            assert sub.wait_for(lambda s: s.on("vapipe/gate/counts"))
            time.sleep(0.5)  # anything else retained would have come with it
            assert sub.on("vapipe/old/state") == sub.on("vapipe/old/counts") == []
    finally:
        mqtt.close()


def test_a_publisher_that_dies_is_reported_offline_by_its_will(broker, tmp_path):
    script = (
        "import sys, time\n"
        "from pipeline.apps.serve.config import MqttConfig\n"
        "from pipeline.apps.serve.mqtt import MqttPublisher\n"
        f"m = MqttPublisher(MqttConfig(host='127.0.0.1', port={broker.port}, keepalive=5))\n"
        "m.start(); m.publish_state('gate', {'state': 'streaming'})\n"
        "print('up', flush=True); time.sleep(60)\n"
    )
    with Subscriber(broker.port, "vapipe/available") as sub:
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        try:
            assert process.stdout.readline().strip() == b"up"
            assert sub.wait_for(lambda s: s.on("vapipe/available") == [b"online"])
        finally:
            process.kill()  # no clean disconnect: the broker publishes the will
            process.wait()
        assert sub.wait_for(lambda s: s.on("vapipe/available")[-1:] == [b"offline"], 15)


def test_events_published_while_the_broker_is_down_arrive_after_it_restarts_in_order(tmp_path):
    # A persistent broker and subscriber session: the subscriber, which also loses the broker,
    # must get what vapipe publishes before it has reconnected itself.
    broker = Mosquitto(tmp_path / "broker", persistent=True).start()
    metrics = ServiceMetrics()
    mqtt = MqttPublisher(
        MqttConfig(host="127.0.0.1", port=broker.port), reconnect_delay=FAST,
        on_dropped=metrics.count_mqtt_dropped,
    )  # fmt: skip
    mqtt.start()
    with Subscriber(broker.port, persistent=True) as sub:
        mqtt.publish_state("gate", {"state": "streaming"})
        for n in range(100):
            mqtt.publish_event("gate", {"n": n})
        assert sub.wait_for(lambda s: len(s.on("vapipe/gate/events")) == 100)
        broker.stop()
        for n in range(100, 600):  # the first of these go out before the loss is noticed
            mqtt.publish_event("gate", {"n": n})
            if n % 50 == 0:
                time.sleep(0.05)
        time.sleep(1.0)
        broker.start()  # same port
        assert sub.wait_for(lambda s: 599 in numbers(s, "vapipe/gate/events"), 20)
        # The retained state and availability are published again on the new connection.
        assert sub.wait_for(lambda s: len(s.on("vapipe/gate/state")) >= 2)
        assert sub.on("vapipe/available")[-1] == b"online"
    mqtt.close()
    broker.kill()
    got = numbers(sub, "vapipe/gate/events")
    # QoS 1 is at least once: an event in flight when the broker died may come twice, but
    # none is lost and the order of first arrivals is the order published.
    unique = list(dict.fromkeys(got))
    assert unique == list(range(600))
    assert mqtt.dropped == 0 and metrics.mqtt_events_dropped._value.get() == 0
    print(f"events: {len(got)} received for 600 published ({len(got) - 600} duplicates)")


def test_beyond_the_queue_size_the_oldest_events_are_dropped_and_counted(tmp_path, caplog):
    metrics = ServiceMetrics()
    with Mosquitto(tmp_path / "b") as broker:
        port = broker.port
    config = MqttConfig(host="127.0.0.1", port=port, queue_size=50)
    mqtt = MqttPublisher(config, reconnect_delay=FAST, on_dropped=metrics.count_mqtt_dropped)
    mqtt.start()  # the broker is down
    for n in range(80):
        mqtt.publish_event("gate", {"n": n})
    assert mqtt.dropped == 30 and metrics.mqtt_events_dropped._value.get() == 30
    assert "dropping the oldest" in caplog.text
    with Mosquitto(tmp_path / "b", port=port) as broker, Subscriber(port) as sub:
        assert sub.wait_for(lambda s: len(s.on("vapipe/gate/events")) == 50, 20)
        assert numbers(sub, "vapipe/gate/events") == list(range(30, 80)), "the newest 50 kept"
        mqtt.close()


def test_a_broker_with_passwords_takes_the_configured_user(tmp_path):
    users = {"vapipe": "pw-1234"}
    with Mosquitto(tmp_path / "b", users=users) as broker:
        with Subscriber(broker.port, auth=("vapipe", "pw-1234")) as sub:
            mqtt = publisher(broker, username="vapipe", password="pw-1234").start()
            mqtt.publish_event("gate", {"n": 1})
            assert sub.wait_for(lambda s: s.on("vapipe/gate/events"))
            mqtt.close()
            wrong = publisher(broker, username="vapipe", password="nope").start()
            wrong.publish_event("gate", {"n": 2})
            time.sleep(1.0)
            assert not wrong.connected
            wrong.close(timeout=0.5)
        assert numbers(sub, "vapipe/gate/events") == [1]


def test_over_tls_the_broker_is_checked_against_the_given_ca(tmp_path):
    certificates = make_certificates(tmp_path / "pki")
    with Mosquitto(tmp_path / "b", tls=certificates) as broker:
        with Subscriber(broker.port, tls_ca=certificates["ca"]) as sub:
            config = MqttConfig(
                host="127.0.0.1", port=broker.port, tls=True, ca_file="pki/ca.crt"
            )  # relative to the config's folder
            mqtt = MqttPublisher(config, reconnect_delay=FAST, base_dir=tmp_path).start()
            mqtt.publish_event("gate", {"n": 1})
            assert sub.wait_for(lambda s: s.on("vapipe/gate/events"))
            mqtt.close()
            untrusted = MqttPublisher(
                MqttConfig(host="127.0.0.1", port=broker.port, tls=True), reconnect_delay=FAST
            ).start()  # the system's CAs: this test CA is not among them
            untrusted.publish_event("gate", {"n": 2})
            time.sleep(1.0)
            assert not untrusted.connected
            untrusted.close(timeout=0.5)
        assert numbers(sub, "vapipe/gate/events") == [1]


def test_the_service_turns_tracking_events_into_mqtt_events_counts_and_metrics(broker, tmp_path):
    from pipeline.apps.serve.config import parse_config
    from pipeline.apps.serve.service import Service

    config = parse_config({
        "model": {"path": str(SSD_XML)}, "http": {"bind": "127.0.0.1:0"},
        "mqtt": {"host": "127.0.0.1", "port": broker.port},
    }, tmp_path)  # fmt: skip
    service = Service(config)
    events = [
        {"type": "line_cross", "line": "entry", "direction": "in", "label": "vehicle", "n": 0},
        {"type": "zone_enter", "zone": "door", "label": "person", "n": 1},
        {"type": "line_cross", "line": "entry", "direction": "out", "label": "vehicle", "n": 2},
        {"type": "zone_exit", "zone": "door", "label": "person", "n": 3},
        {"type": "track_end", "label": "vehicle", "n": 4},
    ]
    with Subscriber(broker.port) as sub:
        service.mqtt.start()
        for event in events:
            service.publish_event("gate", event)
        assert sub.wait_for(lambda s: len(s.on("vapipe/gate/events")) == 5)
        assert sub.wait_for(lambda s: len(s.on("vapipe/gate/counts")) >= 1)
        service.mqtt.close()
        service.api.close()
    assert numbers(sub, "vapipe/gate/events") == [0, 1, 2, 3, 4]
    counts = json.loads(sub.on("vapipe/gate/counts")[-1])
    assert counts["lines"]["entry"]["in"] == 1 and counts["lines"]["entry"]["out"] == 1
    assert counts["lines"]["entry"]["by_label"] == {"vehicle": {"in": 1, "out": 1}}
    assert counts["zones"]["door"] == {"entered": 1, "occupancy": {"person": 0}}
    text = service.metrics.render().decode()
    assert 'vapipe_line_crossings_total{direction="out",label="vehicle",line="entry",' in text
    assert 'vapipe_zone_occupancy{label="person",stream="gate",zone="door"} 0.0' in text
