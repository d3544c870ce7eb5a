"""Serve soak: `vapipe serve` for `--duration` seconds under API churn, scraping and a flaky broker.

The service is started as users start it (`python -m pipeline serve --config FILE`) on
127.0.0.1 with a token, a real mosquitto broker on loopback (`tests/mosquitto.py`, persistent,
with a persistent QoS 1 subscriber to `vapipe/+/events`) and file cameras playing the shared car
clip as realtime loops, tracked, with a line across the middle so that line_cross events happen.
`gate` is in the config file for the whole run; every `--change-every` seconds one API call
cycles the other cameras: POST a camera `churnN`, PUT it (another max_fps and line), DELETE it
(at most two of them at once). Meanwhile one client scrapes `/metrics` every second and one
reads `GET /api/events/stream` (Server-Sent Events; skipped when the service has no such route),
and the broker is restarted `--broker-restarts` times (SIGTERM, 2 s down, started again on the
same port and database). Every `--sample-every` seconds the service process's RSS, threads and
open fds are read from /proc (`soak.proc_figures`).

Verdicts: RSS growth from `--warmup` to the end under `--rss-growth-limit` (and fds and threads
within a slack: the same rule as `benchmarks/soak.py`), and nothing lost. An event's identity is
its whole JSON object (the events.jsonl line; SSE's `clip_url`/`snapshot_url` left out). The
reference is what the service wrote: every `.events.jsonl` segment of every camera (a camera
removed mid-way has its segment closed by the DELETE; events its pipeline still held then were
never written and are not counted: they are not observable). "Lost" for MQTT = a line of the
files that the subscriber never received; for SSE = a line written while the SSE client was
connected (from its first received event to the end) that it never received. Lines received
that are in no file are "phantom"; QoS 1 re-sends are reported as duplicates, not failures.

Writes `serve_soak.csv` (samples), `serve_soak.json` (figures, verdicts, per-camera counts) and
`serve_soak.png` (matplotlib: `pip install -e '.[bench]'`), prints one verdict line.

    python benchmarks/serve_soak.py [--duration 600] [--out benchmarks/results/serve_soak]

Exit status 0 when every verdict holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import json
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from mosquitto import Mosquitto, Subscriber, free_port  # noqa: E402
from soak import Verdict, proc_figures  # noqa: E402  (the run soak's /proc sampling)

MODEL = SHARED / "models" / "person-vehicle-bike-detection-2000"
CLIP = SHARED / "videos" / "car-detection.mp4"
LABELS = ["vehicle", "person", "bike"]
SSE_MARGIN_S = 2.0  # an event captured this long after the SSE client connected must reach it
MEDIA_KEYS = ("clip_url", "snapshot_url")  # added by the API to an events.jsonl line


@dataclass(frozen=True)
class Sample:
    t_s: float
    rss_mb: float
    fds: int
    threads: int
    cameras: int
    mqtt_events: int
    sse_events: int
    scrapes: int


@dataclass(frozen=True)
class Action:
    t_s: float
    kind: str  # add, change, remove, broker-down, broker-up
    camera: str
    status: int


def model_xml(path: Path) -> Path:
    return path if path.suffix == ".xml" else next(path.rglob("*.xml"))


def identity(event: dict) -> str:
    return json.dumps({k: v for k, v in event.items() if k not in MEDIA_KEYS}, sort_keys=True)


class Api:
    """Calls to the service with its token."""

    def __init__(self, port: int, token: str) -> None:
        self.base, self.token = f"http://127.0.0.1:{port}", token

    def request(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        return urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )  # fmt: skip

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.request(method, path, body), timeout=30) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""


class Scraper(threading.Thread):
    """GET /metrics every second."""

    def __init__(self, api: Api, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.api, self.stop, self.ok, self.failed = api, stop, 0, 0

    def run(self) -> None:
        while not self.stop.wait(1.0):
            status, _ = self.api.call("GET", "/metrics")
            if status == 200:
                self.ok += 1
            else:
                self.failed += 1


class SseClient(threading.Thread):
    """Reads GET /api/events/stream and keeps each `event: event` data object; reconnects.
    `available` is False when the route answers 404 (a service without the event stream)."""

    def __init__(self, api: Api, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.api, self.stop = api, stop
        self.events: list[dict] = []
        self.available: bool | None = None
        self.connections = 0
        self.connected_at: float | None = None  # wall clock of the first connection

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                request = self.api.request("GET", "/api/events/stream")
                with urllib.request.urlopen(request, timeout=30) as reply:
                    self.available, kind = True, None
                    self.connections += 1
                    self.connected_at = self.connected_at or time.time()
                    for raw in reply:
                        line = raw.decode("utf-8").rstrip("\r\n")
                        if line.startswith("event:"):
                            kind = line[6:].strip()
                        elif line.startswith("data:") and kind == "event":
                            self.events.append(json.loads(line[5:]))
                        elif not line:
                            kind = None
                        if self.stop.is_set():
                            return
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    self.available = False
                    return
            except (OSError, ValueError):
                pass
            self.stop.wait(0.5)


class Churn:
    """Every `every` seconds one API call: add churnN, change it, remove it; two in flight."""

    def __init__(self, api: Api, every: float, t0: float) -> None:
        self.api, self.every, self.t0 = api, every, t0
        self.actions: list[Action] = []
        self.live: list[str] = []
        self._n, self._step, self._next = 0, 0, t0 + every

    def table(self, fps: float, y: float) -> dict:
        return {
            "source": CLIP.name, "realtime": True, "loop": True, "track": True, "max_fps": fps,
            "lines": {"middle": [0.0, y, 1.0, y]},
        }  # fmt: skip

    def step(self, until: float) -> None:
        now = time.time()
        if now < self._next or now > until:
            return
        self._next += self.every
        phase = self._step % 3
        self._step += 1
        if phase == 0:
            self._n += 1
            name = f"churn{self._n}"
            status, _ = self.api.call("POST", "/api/streams", {"name": name, **self.table(5, 0.5)})
            self.live.append(name)
            self.actions.append(Action(round(now - self.t0, 1), "add", name, status))
        elif phase == 1:
            name = self.live[-1]
            status, _ = self.api.call("PUT", f"/api/streams/{name}", self.table(4, 0.6))
            self.actions.append(Action(round(now - self.t0, 1), "change", name, status))
        elif len(self.live) > 1 or self._n % 2 == 0:  # keep one alive every other cycle
            name = self.live.pop(0)
            status, _ = self.api.call("DELETE", f"/api/streams/{name}")
            self.actions.append(Action(round(now - self.t0, 1), "remove", name, status))

    def remove_all(self) -> None:
        while self.live:
            name = self.live.pop(0)
            status, _ = self.api.call("DELETE", f"/api/streams/{name}")
            self.actions.append(Action(round(time.time() - self.t0, 1), "remove", name, status))


def written_events(results: Path) -> dict[str, list[dict]]:
    """Every line of every camera's events segments (closed and `.part`), per camera."""
    out: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(results.glob("*/*.events.jsonl*")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    event = json.loads(line)
                    out[event.get("stream", path.parent.name)].append(event)
    return out


def compare(
    written: dict[str, list[dict]], received: list[dict], span: tuple[float, float] | None
) -> tuple[dict, int, int, int, list[dict]]:
    """Per camera {written, received, lost}; total lost, phantom, duplicates. With `since`, only
    lines captured within `span` are expected (the SSE client's connected span)."""
    counts = Counter(identity(e) for e in received)
    known = set()
    per, lost = {}, 0
    missed: list[dict] = []
    for camera, events in sorted(written.items()):
        expected = [e for e in events if span is None or span[0] <= e["captured_at"] <= span[1]]
        keys = [identity(e) for e in expected]
        known.update(identity(e) for e in events)
        missing = sum(1 for k in keys if counts[k] == 0)
        missed += [e for e, k in zip(expected, keys, strict=True) if counts[k] == 0][:10]
        per[camera] = {"written": len(expected), "received": len(keys) - missing, "lost": missing}
        lost += missing
    phantom = sum(n for k, n in counts.items() if k not in known)
    duplicates = sum(n - 1 for k, n in counts.items() if n > 1)
    return per, lost, phantom, duplicates, missed


def growth_verdicts(samples: list[Sample], warmup: float, end: float, limit: float,
                    fd_slack: int, thread_slack: int) -> list[Verdict]:  # fmt: skip
    """The run soak's rule: RSS median over the first window after warm-up vs the last;
    fds and threads, first quarter vs last quarter, within a slack."""
    after = [s for s in samples if warmup <= s.t_s <= end] or samples[-1:]
    window = max(1, len(after) // 4)
    first, last = after[:window], after[-window:]

    def median(group: list[Sample], attr: str) -> float:
        values = sorted(getattr(s, attr) for s in group)
        return values[len(values) // 2]

    rss0, rss1 = median(first, "rss_mb"), median(last, "rss_mb")
    growth = rss1 / rss0 - 1
    out = [Verdict(
        "rss", growth < limit,
        f"RSS {rss0:.0f} MB after warm-up -> {rss1:.0f} MB at the end ({growth:+.1%}; "
        f"limit {limit:.0%}); peak {max(s.rss_mb for s in after):.0f} MB",
    )]  # fmt: skip
    for attr, slack in (("fds", fd_slack), ("threads", thread_slack)):
        a, b = median(first, attr), median(last, attr)
        values = [getattr(s, attr) for s in after]
        out.append(Verdict(
            attr, b - a <= slack,
            f"{attr}: {a:.0f} -> {b:.0f} (slack {slack}); range {min(values)}-{max(values)}",
        ))  # fmt: skip
    return out


def write_csv(path: Path, samples: list[Sample]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        names = list(Sample.__dataclass_fields__)
        writer.writerow(names)
        for s in samples:
            writer.writerow([getattr(s, n) for n in names])


def plot(path: Path, samples: list[Sample], actions: list[Action], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s.t_s / 60 for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    axes[0].plot(minutes, [s.rss_mb for s in samples], color="tab:blue")
    axes[0].set_ylabel("RSS (MB)")
    axes[1].plot(minutes, [s.fds for s in samples], label="open fds")
    axes[1].plot(minutes, [s.threads for s in samples], label="threads")
    axes[1].plot(minutes, [s.cameras for s in samples], label="cameras")
    axes[1].set_ylabel("count")
    axes[1].legend(loc="upper left")
    axes[2].plot(minutes, [s.mqtt_events for s in samples], label="MQTT events received")
    axes[2].plot(minutes, [s.sse_events for s in samples], label="SSE events received")
    axes[2].set_ylabel("events (total)")
    axes[2].set_xlabel("minutes")
    axes[2].legend(loc="upper left")
    for a in actions:
        if a.kind.startswith("broker"):
            for ax in axes:
                ax.axvline(a.t_s / 60, color="tab:red", alpha=0.6, linewidth=0.8)
    axes[0].set_title(title + "  (red: broker stopped / started)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def config_text(port: int, token: str, mqtt_port: int, model: Path) -> str:
    return (
        f'[model]\npath = "{model}"\nlabels = {json.dumps(LABELS)}\n\n'
        f'[http]\nbind = "127.0.0.1:{port}"\ntoken = "{token}"\nmedia_root = "media"\n\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n\n[output]\ndir = "results"\n\n'
        f'[cameras.gate]\nsource = "media/{CLIP.name}"\nrealtime = true\nloop = true\n'
        "track = true\nmax_fps = 8\nlines = { middle = [0.0, 0.5, 1.0, 0.5] }\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--model", default=str(MODEL))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve_soak"))
    parser.add_argument("--work", help="scratch folder (default: a fresh temporary one)")
    parser.add_argument("--change-every", type=float, default=5.0)
    parser.add_argument("--broker-restarts", type=int, default=2)
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, help="default: min(300, duration / 5)")
    parser.add_argument("--rss-growth-limit", type=float, default=0.05)
    parser.add_argument("--fd-slack", type=int, default=8)
    parser.add_argument("--thread-slack", type=int, default=8)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else min(300.0, args.duration / 5)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import tempfile

    work = Path(args.work or tempfile.mkdtemp(prefix="serve-soak-"))
    if work.exists():
        shutil.rmtree(work)
    (work / "media").mkdir(parents=True)
    shutil.copy(CLIP, work / "media" / CLIP.name)
    port, token = free_port(), secrets.token_hex(16)
    broker = Mosquitto(work / "broker", persistent=True).start()
    config = work / "vapipe.toml"
    config.write_text(config_text(port, token, broker.port, model_xml(Path(args.model))))
    api, stop = Api(port, token), threading.Event()
    samples: list[Sample] = []
    subscriber = Subscriber(broker.port, "vapipe/+/events", persistent=True).__enter__()
    broker.save()  # the subscriber's session survives the restarts
    log_path = work / "serve.log"
    with log_path.open("w") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "serve", "--config", str(config)],
            cwd=work, stdout=log, stderr=subprocess.STDOUT,
            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    code, t0, end_at, sse_closed_at = None, time.time(), None, time.time()
    try:
        while api.call("GET", "/healthz")[0] != 200:
            if service.poll() is not None:
                raise SystemExit(f"serve_soak: the service died: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        t0 = time.time()
        print(f"serve_soak: service pid {service.pid} on {port}, {args.duration:g} s", flush=True)
        scraper, sse = Scraper(api, stop), SseClient(api, stop)
        scraper.start()
        sse.start()
        churn = Churn(api, args.change_every, t0)
        restarts = [
            t0 + args.duration * (i + 1) / (args.broker_restarts + 1)
            for i in range(args.broker_restarts)
        ]  # fmt: skip
        broker_back: float | None = None
        actions = churn.actions
        next_sample = t0
        end = t0 + args.duration
        while time.time() < end:
            now = time.time()
            if service.poll() is not None:
                break
            churn.step(end - 2 * args.change_every)
            if restarts and now >= restarts[0] and broker_back is None:
                restarts.pop(0)
                broker.stop()
                actions.append(Action(round(now - t0, 1), "broker-down", "", 0))
                broker_back = now + 2.0
            if broker_back is not None and now >= broker_back:
                broker.start()
                actions.append(Action(round(time.time() - t0, 1), "broker-up", "", 0))
                broker_back = None
            if now >= next_sample:
                next_sample += args.sample_every
                rss, fds, threads = proc_figures(service.pid)
                samples.append(Sample(
                    round(now - t0, 1), round(rss, 1), fds, threads, 1 + len(churn.live),
                    len(subscriber.messages), len(sse.events), scraper.ok,
                ))  # fmt: skip
                if len(samples) % 12 == 0:
                    print(f"serve_soak: {samples[-1]}", flush=True)
            time.sleep(0.1)
        churn.remove_all()  # closes their segments
        end_at = time.time()
        written = written_events(work / "results")
        expected = sum(len(v) for v in written.values())
        deadline = time.time() + 30
        while time.time() < deadline and (
            len(subscriber.messages) < expected or (sse.available and len(sse.events) < expected)
        ):
            time.sleep(0.2)
            written = written_events(work / "results")
            expected = sum(len(v) for v in written.values())
        time.sleep(1.0)
        stop.set()  # the SSE client leaves here; what the shutdown writes (tracks ended) is
        sse_closed_at = time.time()  # expected over MQTT only
        service.send_signal(signal.SIGTERM)
        code = service.wait(timeout=60)
    finally:
        stop.set()
        if service.poll() is None:
            service.kill()
            service.wait()
        subscriber.__exit__(None, None, None)
        broker.kill()
    written = written_events(work / "results")
    mqtt_events = [json.loads(payload) for _, payload, _ in subscriber.messages]
    judged = growth_verdicts(samples, warmup, args.duration, args.rss_growth_limit,
                             args.fd_slack, args.thread_slack)  # fmt: skip
    total = sum(len(v) for v in written.values())
    per_mqtt, lost, phantom, dup, mqtt_missed = compare(written, mqtt_events, None)
    judged.append(Verdict(
        "mqtt", total > 0 and lost == 0 and phantom == 0,
        f"{total} events written, {len(mqtt_events)} MQTT messages: {lost} lost, "
        f"{phantom} phantom, {dup} duplicates (QoS 1)",
    ))  # fmt: skip
    per_sse: dict = {}
    sse_missed: list[dict] = []
    if sse.available:
        span = (sse.connected_at + SSE_MARGIN_S, sse_closed_at - SSE_MARGIN_S)
        per_sse, lost, phantom, dup, sse_missed = compare(written, sse.events, span)
        expected = sum(c["written"] for c in per_sse.values())
        judged.append(Verdict(
            "sse", expected > 0 and lost == 0 and phantom == 0,
            f"{expected} events written while connected ({sse.connections} connections), "
            f"{len(sse.events)} received: {lost} lost, {phantom} phantom, {dup} duplicates",
        ))  # fmt: skip
    failed_calls = [a for a in actions if not a.kind.startswith("broker") and a.status >= 300]
    judged.append(Verdict(
        "api", not failed_calls and scraper.failed == 0,
        f"{sum(not a.kind.startswith('broker') for a in actions)} camera calls "
        f"({Counter(a.kind for a in actions)}), failed {len(failed_calls)}; "
        f"{scraper.ok} scrapes, {scraper.failed} failed",
    ))  # fmt: skip
    log_text = log_path.read_text(errors="replace")
    judged.append(Verdict(
        "exit", code in (0, 130) and "Traceback" not in log_text,
        f"service exit status {code}, {log_text.count('Traceback')} tracebacks in its log",
    ))  # fmt: skip
    report = {
        "duration_s": args.duration, "warmup_s": warmup, "model": args.model,
        "sse_available": bool(sse.available),
        "verdicts": [asdict(v) for v in judged], "per_camera_mqtt": per_mqtt,
        "per_camera_sse": per_sse,
        "sse_connected_at": sse.connected_at, "t0": t0, "end_at": end_at,
        "lost_mqtt": mqtt_missed, "lost_sse": sse_missed, "actions": [asdict(a) for a in actions],
        "samples": [asdict(s) for s in samples],
    }  # fmt: skip
    (out / "serve_soak.json").write_text(json.dumps(report, indent=1) + "\n")
    write_csv(out / "serve_soak.csv", samples)
    if not args.no_plot:
        try:
            title = f"vapipe serve soak, {args.duration / 60:g} min"
            plot(out / "serve_soak.png", samples, actions, title)
        except ImportError:
            print("serve_soak: no plot (matplotlib missing: pip install -e '.[bench]')")
    for v in judged:
        print(f"{'PASS' if v.passed else 'FAIL'} {v.name}: {v.detail}")
    passed = all(v.passed for v in judged)
    print(
        f"serve_soak: {'PASS' if passed else 'FAIL'} "
        + "; ".join(f"{v.name} {'ok' if v.passed else 'FAILED'}" for v in judged)
        + f" ({out / 'serve_soak.json'}, log {log_path})"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
