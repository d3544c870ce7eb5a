"""Motion-gated inference: the motion detector on drawn frames, and the pipeline on the shared
clips and on clips made for it (tests/motion_clips.py): counts unchanged, light changes and
masked motion never make every frame inferred, every decoded frame accounted for."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import CAR, PERSON, SSD_LABELS, SSD_XML, read_jsonl, run_cli
from motion_clips import background, light_jump, masked_mover
from synthetic_clip import write_clip

from pipeline.apps.serve.config import ConfigError, parse_camera
from pipeline.engine.motion import MotionDetector, MotionGate
from pipeline.engine.motion_options import MotionError, MotionOptions, parse_motion_mask
from sources import Frame

MODEL = ("--model", SSD_XML, "--labels", SSD_LABELS)
MIDDLE = "middle=0,0.5,1,0.5"
TOP_RIGHT = "0.55,0,0.95,0,0.95,0.3,0.55,0.3"  # covers masked_mover's block


def _square(image: np.ndarray, x: int, y: int, side: int = 60) -> np.ndarray:
    image = image.copy()
    image[y : y + side, x : x + side] = 255
    return image


def test_a_moving_square_is_found_where_it_was_drawn():
    still = background()
    detector = MotionDetector(MotionOptions())
    assert not detector.detect(still).moving  # the first frame: the background
    assert not detector.detect(still).moving
    seen = detector.detect(_square(still, 300, 200))
    (box,) = seen.boxes
    x1, y1, x2, y2 = box
    assert x1 <= 300 and y1 <= 200 and x2 >= 360 and y2 >= 260, box  # holds the square
    assert x1 > 265 and y1 > 165 and x2 < 395 and y2 < 295, box  # and 35 px more at most


def test_a_square_smaller_than_the_minimum_area_is_not_motion():
    still = background()
    detector = MotionDetector(MotionOptions(min_area=0.05))  # 60x60 is 1.1 % of 768x432
    detector.detect(still)
    assert not detector.detect(_square(still, 300, 200)).moving
    assert MotionDetector(MotionOptions(min_area=0.005)).detect(still).boxes == ()


def test_a_light_change_rebaselines_instead_of_moving():
    still = background()
    bright = cv2.convertScaleAbs(still, alpha=1.3, beta=50)
    detector = MotionDetector(MotionOptions())
    detector.detect(still)
    jump = detector.detect(bright)
    assert jump.light_change and not jump.moving and jump.changed > 0.5
    after = [detector.detect(bright) for _ in range(5)]
    assert not any(m.moving for m in after)
    assert detector.detect(_square(bright, 300, 200)).moving  # still sees motion after it


def test_motion_under_a_mask_is_ignored_and_elsewhere_is_not():
    still = background()
    mask = parse_motion_mask("0.3,0.3,0.6,0.3,0.6,0.8,0.3,0.8")  # x 230..461, y 130..346
    detector = MotionDetector(MotionOptions(masks=(mask,)), (mask,))
    detector.detect(still)
    assert not detector.detect(_square(still, 300, 200)).moving
    assert detector.detect(_square(still, 50, 50)).moving


def test_the_gate_infers_motion_live_tracks_and_a_keepalive():
    still = background()
    alive = [False]
    gate = MotionGate(MotionOptions(keepalive=2.0), "cam", tracks_alive=lambda: alive[0])

    def check(index: int, image: np.ndarray = still) -> bool:
        return gate.check(Frame("cam", index, index * 100.0, 0.0, image)).infer

    decisions = [check(i) for i in range(45)]  # 10 fps, nothing moves
    assert [i for i, infer in enumerate(decisions) if infer] == [0, 20, 40]
    alive[0] = True
    assert check(45) and check(46)
    alive[0] = False
    assert not check(47)
    assert check(48, _square(still, 300, 200))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0.1,0.1,0.5,0.1", "expected [STREAM:]x1,y1"),
        ("0.1,0.1,0.5,0.1,0.5", "expected [STREAM:]x1,y1"),
        ("0.1,0.1,1.5,0.1,0.5,0.5", "corners are fractions"),
        ("a,b,c,d,e,f", "expected [STREAM:]x1,y1"),
    ],
)
def test_a_bad_motion_mask_is_refused_naming_the_option(text, why):
    with pytest.raises(MotionError, match=f"--motion-mask {text}: {why}".replace("[", r"\[")):
        parse_motion_mask(text)


def test_a_mask_for_one_stream_applies_to_it_only():
    mask = parse_motion_mask("gate:0,0,1,0,1,0.2")
    options = MotionOptions(masks=(mask, parse_motion_mask("0,0,0.1,0,0.1,0.1")))
    assert mask.stream == "gate"
    assert len(options.masks_for("gate")) == 2 and len(options.masks_for("yard")) == 1


def test_the_cli_refuses_a_bad_mask_in_one_line_before_any_work(tmp_path):
    proc = run_cli("run", CAR, *MODEL, "--motion-mask", "0,0,1", "--no-progress")
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vapipe: error:")]
    assert len(errors) == 1 and errors[0].startswith("vapipe: error: --motion-mask 0,0,1: ")
    assert "Traceback" not in proc.stderr


def test_the_camera_table_takes_motion_keys_and_names_a_bad_one():
    camera = parse_camera("gate", {
        "source": str(CAR), "motion_min_area": 0.01, "motion_keepalive": 3,
        "motion_mask": [[0, 0, 0.2, 0, 0.2, 0.1]],
    }, "cameras.gate")  # fmt: skip
    options = camera.motion_options()
    assert options is not None and options.min_area == 0.01 and options.keepalive == 3
    assert options.masks[0].points == ((0, 0), (0.2, 0), (0.2, 0.1))
    assert camera.to_table()["motion_mask"] == [[0, 0, 0.2, 0, 0.2, 0.1]]
    assert parse_camera("yard", {"source": str(CAR)}).motion_options() is None
    with pytest.raises(ConfigError, match=r"^cameras.gate.motion_mask\[0\]: expected at least 3"):
        parse_camera("gate", {"source": str(CAR), "motion_mask": [[0, 0, 1, 1]]}, "cameras.gate")
    with pytest.raises(ConfigError, match=r"^cameras.gate.motion_threshold: must be a fraction"):
        parse_camera("gate", {"source": str(CAR), "motion_threshold": 2}, "cameras.gate")


# -- end to end --------------------------------------------------------------------------------


def _run(tmp_path, name: str, clip, *args) -> tuple[dict, list[dict], list[dict]]:
    out = tmp_path / name
    proc = run_cli("run", f"clip={clip}", *MODEL, "--out", out, "--no-progress", *args)
    assert proc.returncode == 0, proc.stderr
    (stream,) = json.loads((out / "summary.json").read_text())["streams"]
    events_path = out / "clip.events.jsonl"
    events = read_jsonl(events_path) if events_path.exists() else []
    return stream, read_jsonl(out / "clip.jsonl"), events


def _check_accounting(stream: dict, frames: list[dict], sampled_out: int = 0) -> None:
    """decoded = processed + dropped + skipped, the no-motion frames delivered in order."""
    assert stream["frames_decoded"] == (
        stream["frames_processed"] + stream["frames_dropped"] + stream["frames_skipped"]
    )
    unseen = [f for f in frames if f.get("skipped") == "no_motion"]
    assert stream["frames_no_motion"] == len(unseen)
    assert stream["frames_skipped"] == len(unseen) + sampled_out
    assert len(frames) == stream["frames_processed"] + len(unseen)
    indices = [f["frame"] for f in frames]
    assert indices == sorted(set(indices)), "one line per frame, in frame order"
    assert all(f["detections"] == [] for f in unseen)


def _ends(events: list[dict]) -> list[tuple]:
    return [(e["track_id"], e["first_frame"], e["last_frame"]) for e in events
            if e["type"] == "track_end"]  # fmt: skip


@pytest.mark.parametrize("every", [1, 2])
def test_the_car_clip_counts_the_same_with_motion_gating(tmp_path, every):
    line = ("--line", MIDDLE, "--every", every)
    plain, _, plain_events = _run(tmp_path, "plain", CAR, *line)
    gated, frames, gated_events = _run(tmp_path, "gated", CAR, *line, "--motion")
    assert (gated["tracks"], gated["lines"]) == (plain["tracks"], plain["lines"])
    assert gated["lines"]["middle"]["in"] == 2 and gated["lines"]["middle"]["out"] == 2
    assert _ends(gated_events) == _ends(plain_events)
    assert 0 < gated["frames_no_motion"] < gated["frames_decoded"]
    _check_accounting(gated, frames, sampled_out=plain["frames_skipped"])
    assert plain["frames_no_motion"] == 0


def test_the_person_clip_counts_the_same_with_motion_gating(tmp_path):
    desk = ("--line", "exit=0.75,1,0.75,0", "--zone", "desk=0.45,0.6,0.75,0.6,0.75,1,0.45,1")
    plain, _, _ = _run(tmp_path, "plain", PERSON, *desk)
    gated, frames, _ = _run(tmp_path, "gated", PERSON, *desk, "--motion")
    for key in ("tracks", "lines", "zones"):
        assert gated[key] == plain[key], key
    _check_accounting(gated, frames)


def test_the_synthetic_clip_keeps_its_tracks_with_motion_gating(tmp_path):
    write_clip(tmp_path / "known.mp4")
    plain, _, plain_events = _run(tmp_path, "plain", tmp_path / "known.mp4", "--track")
    gated, frames, gated_events = _run(tmp_path, "gated", tmp_path / "known.mp4", "--track",
                                       "--motion")  # fmt: skip
    assert gated["tracks"] == plain["tracks"] == 7
    assert _ends(gated_events) == _ends(plain_events)
    _check_accounting(gated, frames)


def test_a_light_switched_on_does_not_make_every_frame_after_it_inferred(tmp_path):
    count = light_jump(tmp_path / "light.avi", frames=60, jump_at=20)
    stream, frames, _ = _run(tmp_path, "gated", tmp_path / "light.avi", "--motion")
    inferred = [f["frame"] for f in frames if "skipped" not in f]
    assert inferred == [0, 50]  # the first frame, then the 5 s keep-alive: not the jump
    assert stream["frames_decoded"] == len(frames) == count
    _check_accounting(stream, frames)


def test_a_moving_masked_region_never_triggers_inference(tmp_path):
    count = masked_mover(tmp_path / "clock.avi", frames=60)
    gated, frames, _ = _run(tmp_path, "gated", tmp_path / "clock.avi", "--motion-mask",
                            TOP_RIGHT, "--motion-keepalive", "2.45")  # fmt: skip
    assert [f["frame"] for f in frames if "skipped" not in f] == [0, 25, 50]
    _check_accounting(gated, frames)
    unmasked, frames, _ = _run(tmp_path, "unmasked", tmp_path / "clock.avi", "--motion")
    assert unmasked["frames_processed"] == count, "without the mask it moves in every frame"
