"""The service's config file: every bad config is one line naming the key; diffs; write-back."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import pytest
from conftest import CAR, SSD_XML, run_cli

from pipeline.apps.serve.config import (
    ConfigError,
    Line,
    diff_configs,
    load_config,
    parse_camera,
)
from pipeline.apps.serve.config_file import ConfigFile
from sources import DecoderOptions

GOOD = f"""\
# the gate and the yard
[model]
path = "{SSD_XML}"
labels = ["vehicle", "person", "bike"]   # pvb has no names of its own

[http]
bind = "127.0.0.1:0"

[mqtt]
host = "127.0.0.1"
port = 1883

[output]
dir = "results"

[cameras.gate]
source = "rtsp://user:pass@10.0.0.5/stream1"
max_fps = 5   # enough for cars
track = true
lines = {{ entry = [0.0, 0.5, 1.0, 0.5] }}
zones = {{ door = [0.1, 0.1, 0.4, 0.1, 0.4, 0.6] }}

[cameras.yard]
source = "{CAR}"
realtime = true
loop = true
class = "live"
"""


def write(tmp_path: Path, text: str, name: str = "vapipe.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_full_config_reads_into_typed_tables(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.model.labels == "vehicle,person,bike"
    assert config.http.bind == ("127.0.0.1", 0)
    assert config.mqtt.host == "127.0.0.1" and config.mqtt.queue_size == 10_000
    assert config.resolve(config.output.dir) == tmp_path / "results"
    gate = config.cameras["gate"]
    assert gate.max_fps == 5.0 and gate.tracked and not gate.is_file
    assert gate.lines == (Line("entry", (0.0, 0.5, 1.0, 0.5)),)
    assert len(gate.zones[0].points) == 6
    yard = config.cameras["yard"]
    assert yard.realtime and yard.loop and yard.service_class == "live" and yard.is_file
    assert "pass" not in repr(gate), "a camera's repr never shows its credentials"


BAD = [
    ("[model]\npath = = 1\n", "TOML syntax error at line 2, column 8"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nsource = 'rtsp://h/x'\nmax_pfs = 5\n",
     "cameras.gate.max_pfs: unknown key in [cameras.gate]; did you mean max_fps?"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nsource = 'rtsp://h/x'\nmax_fps = -1\n",
     "cameras.gate.max_fps: must be a positive number, got -1"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nsource = 'rtsp://h/x'\nmax_fps = 'fast'\n",
     "cameras.gate.max_fps: must be a number, got 'fast'"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nsource = 'rtsp://h/x'\nevery = 0\n",
     "cameras.gate.every: must be 1 or more, got 0"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nsource = 'rtsp://h/x'\ntrack = 'yes'\n",
     "cameras.gate.track: must be true or false, got 'yes'"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nmax_fps = 5\n",
     "cameras.gate.source: missing; it is required"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nsource = 'rtsp://h/x'\nrealtime = true\n",
     "cameras.gate.realtime: only for video files; gate is live"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nsource = 'rtsp://h/x'\n"
     "lines = { a = [0, 0.5, 1.2, 0.5] }\n", "cameras.gate.lines.a[2]: must be between 0 and 1"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nsource = 'rtsp://h/x'\n"
     "zones = { z = [0, 0, 1, 1] }\n", "cameras.gate.zones.z: expected at least 3 corners"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nsource = 'rtsp://h/x'\npolicy = 'newest'\n",
     "cameras.gate.policy: must be one of block, drop-oldest, got 'newest'"),
    ("[model]\npath = 'm.xml'\nconf = 2\n", "model.conf: must be between 0 and 1, got 2"),
    ("[model]\npath = 'm.xml'\nadapter = 'ssdd'\n", "model.adapter: must be one of auto, ssd"),
    ("[model]\npath = 'm.xml'\ndevise = 'CPU'\n",
     "model.devise: unknown key in [model]; did you mean device?"),
    ("[modle]\npath = 'm.xml'\n", "modle: unknown key in the top level; did you mean model?"),
    ("[http]\nbind = '127.0.0.1:8080'\n", "[model] is missing"),
    ("[model]\npath = 'm.xml'\n[http]\nbind = 'localhost'\n",
     "http.bind: expected HOST:PORT (e.g. 127.0.0.1:8080), got 'localhost'"),
    ("[model]\npath = 'm.xml'\n[mqtt]\nport = 1883\n", "mqtt.host: missing; it is required"),
    ("[model]\npath = 'm.xml'\n[mqtt]\nhost = 'h'\nport = 70000\n",
     "mqtt.port: must be a port number (1-65535), got 70000"),
    ("[model]\npath = 'm.xml'\n[cameras.'my gate']\nsource = 'rtsp://h/x'\n",
     "cameras.my gate: camera name 'my gate' may hold only letters, digits"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nsource = 'rtsp://h/x'\ndecoder = 'ffmpeg'\n",
     "cameras.gate.decoder: must be one of opencv, pyav, got 'ffmpeg'"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nsource = 'rtsp://h/x'\ndeblocking = false\n",
     "cameras.gate.decoder: skipping the deblocking filter needs the PyAV decoder (pyav)"),
    ("[model]\npath = 'm.xml'\n[cameras.gate]\nsource = 'rtsp://h/x'\nskip_nonref = true\n",
     "cameras.gate.decoder: leaving out non-reference frames needs the PyAV decoder"),
    ("[model]\npath = 'm.xml'\n[cluster]\naddress = 'auto'\n[cameras.gate]\n"
     "source = 'rtsp://h/x'\ndecoder = 'pyav'\n",
     "cameras.gate.decoder: pyav is not available with [cluster] yet"),
]  # fmt: skip


def test_a_camera_chooses_its_decoder_as_the_command_line_does(tmp_path):
    text = GOOD.replace("realtime = true", 'realtime = true\ndecoder = "pyav"\ndeblocking = false')
    config = load_config(write(tmp_path, text))
    assert config.cameras["yard"].decoder_options() == DecoderOptions("pyav", deblock=False)
    assert config.cameras["gate"].decoder_options() == DecoderOptions()
    assert config.cameras["yard"].to_table()["deblocking"] is False  # written back as given


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_each_bad_config_is_one_line_naming_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert message in str(error.value)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_the_command_line_exits_2_with_that_line_and_no_traceback(tmp_path):
    path = write(tmp_path, BAD[1][0])
    result = run_cli("serve", "--config", path, "--check")
    assert result.returncode == 2
    assert result.stderr.strip() == f"vapipe: error: {path}: {BAD[1][1]}"
    missing = run_cli("serve", "--config", tmp_path / "none.toml", "--check")
    assert missing.returncode == 2 and "no such config file" in missing.stderr


def test_check_says_a_good_config_is_valid_and_a_missing_video_is_not(tmp_path):
    good = run_cli("serve", "--config", write(tmp_path, GOOD), "--check")
    assert good.returncode == 0, good.stderr
    assert "valid (2 cameras)" in good.stdout
    bad = write(tmp_path, GOOD.replace(str(CAR), "nothing.mp4"), "bad.toml")
    result = run_cli("serve", "--config", bad, "--check")
    assert result.returncode == 2
    assert "cameras.yard.source: no such video file" in result.stderr
    no_model = write(tmp_path, GOOD.replace(str(SSD_XML), "none.xml"), "no-model.toml")
    result = run_cli("serve", "--config", no_model, "--check")
    assert result.returncode == 2 and "model.path: no such model file" in result.stderr


def test_a_diff_names_cameras_added_removed_changed_and_a_model_change(tmp_path):
    old = load_config(write(tmp_path, GOOD))
    text = GOOD.replace("max_fps = 5", "max_fps = 2").replace("[cameras.yard]", "[cameras.lane]")
    new = load_config(write(tmp_path, text, "new.toml"))
    diff = diff_configs(old, new)
    assert (diff.added, diff.removed, diff.changed) == (("lane",), ("yard",), ("gate",))
    assert not diff.restarts_pipeline
    device = load_config(write(tmp_path, GOOD.replace("labels", 'device = "CPU"\nlabels'), "d"))
    assert diff_configs(old, device).model_changed and diff_configs(old, device).restarts_pipeline
    assert diff_configs(old, load_config(write(tmp_path, GOOD, "same.toml"))).empty


def test_write_back_keeps_comments_and_order_and_replaces_the_file_atomically(tmp_path):
    path = write(tmp_path, GOOD)
    path.chmod(0o640)
    file = ConfigFile(path)
    config = load_config(path)
    gate = parse_camera("gate", {**config.cameras["gate"].to_table(), "max_fps": 2})
    file.put_camera(gate)
    file.put_camera(parse_camera("lane", {"source": "rtsp://h/lane", "every": 3}))
    file.remove_camera("yard")
    text = path.read_text()
    assert "# the gate and the yard" in text and "# pvb has no names of its own" in text
    assert "max_fps = 2   # enough for cars" in text, "an updated key keeps its comment"
    assert text.index("[cameras.gate]") < text.index("[cameras.lane]")
    assert "[cameras.yard]" not in text
    again = load_config(path)
    assert list(again.cameras) == ["gate", "lane"]
    assert again.cameras["gate"].max_fps == 2 and again.cameras["lane"].every == 3
    assert again.cameras["gate"].lines == config.cameras["gate"].lines
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vapipe.toml"], "no temporary left"
