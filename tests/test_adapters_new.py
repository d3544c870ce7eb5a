"""The new model families against a reference decoded here, in numpy, from each output
format's description in ../shared/README.md (not from vapipe's adapters)."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import openvino as ov
import pytest
from conftest import ROOT, SHARED

from pipeline.models.adapters import create_adapter
from pipeline.models.loader import fix_input_size, load_model

MODELS = SHARED / "models"
YOLO26 = MODELS / "yolo26n_int8_openvino_model"
YOLOV5 = MODELS / "yolov5n" / "FP16"
PVB2004 = MODELS / "person-vehicle-bike-detection-2004" / "FP16-INT8"
SEG = MODELS / "yolo11n-seg_int8_openvino_model"
POSE = MODELS / "yolov8n-pose_int8_openvino_model"
CAR_CLIP = SHARED / "videos" / "car-detection.mp4"
# Frames whose cars score well clear of the 0.25 threshold on every instruction set (frame 200
# scored above 0.25 on AVX-512 and 0.235 with AMX: a frame near it tests the CPU, not us).
CAR_FRAMES = frozenset({80, 220, 320})
PERSON_CLIP = SHARED / "videos" / "one-by-one-person-detection.mp4"
BOTTLE_CLIP = SHARED / "videos" / "bottle-detection.mp4"

CORE = ov.Core()


def frames(path, indices):
    capture = cv2.VideoCapture(str(path))
    out, index = [], 0
    while index <= max(indices):
        ok, image = capture.read()
        assert ok, f"{path} ended before frame {index}"
        if index in indices:
            out.append(image)
        index += 1
    capture.release()
    return out


def vapipe_detect(model_path, images, adapter="auto"):
    loaded = load_model(CORE, model_path)
    fix_input_size(loaded.model, loaded.info, None, "test")
    fitted = create_adapter(loaded.model, adapter, names=loaded.names, info=loaded.info)
    compiled = CORE.compile_model(fitted.prepare_model(loaded.model), "CPU")
    results = []
    for image in images:
        tensor, meta = fitted.preprocess(image)
        outputs = compiled(tensor)
        results.append(fitted.postprocess([outputs[o] for o in compiled.outputs], meta))
    return fitted, results


# --- the reference: written from the documented formats -------------------------------------


def raw_outputs(model_path, blob, size=None):
    model = CORE.read_model(next(model_path.glob("*.xml")))
    if size is not None:
        model.reshape({0: [1, 3, size[1], size[0]]})
    compiled = CORE.compile_model(model, "CPU")
    result = compiled(blob)
    return [result[o] for o in compiled.outputs], compiled


def letterbox_blob(image, size):
    """Letterbox (value 114, centred) to `size` (W, H), RGB 0..1 NCHW, and its geometry."""
    h, w = image.shape[:2]
    gain = min(size[0] / w, size[1] / h)
    nw, nh = round(w * gain), round(h * gain)
    left, top = round((size[0] - nw) / 2 - 0.1), round((size[1] - nh) / 2 - 0.1)
    canvas = np.full((size[1], size[0], 3), 114, np.uint8)
    canvas[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh))
    blob = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    return blob, gain, left, top, nw, nh


def to_source(xy, gain, left, top):
    return (xy - np.array([left, top] * (xy.shape[-1] // 2))) / gain


def iou_matrix(a, b):
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def greedy_nms(boxes, scores, classes, iou):
    order, keep = list(np.argsort(-scores)), []
    while order:
        best = order.pop(0)
        keep.append(best)
        rest = np.array(order, int)
        if rest.size:
            same = classes[rest] == classes[best]
            overlap = iou_matrix(boxes[best : best + 1], boxes[rest])[0]
            order = list(rest[~(same & (overlap > iou))])
    return np.array(keep, int)


def assert_same(found, boxes, scores, classes):
    """Same detections, in any order: boxes within a pixel, same classes."""
    assert len(found) == len(boxes), f"{len(found)} detections, reference {len(boxes)}"
    assert len(found) > 0, "the reference finds nothing on this frame: pick another"
    order = np.lexsort((boxes[:, 0], -scores))
    mine = np.lexsort((found.boxes[:, 0], -found.scores))
    np.testing.assert_allclose(found.boxes[mine], boxes[order], atol=1.0)
    np.testing.assert_array_equal(found.class_ids[mine], classes[order])
    return mine, order


# --- the families -------------------------------------------------------------------------


def test_yolo26_end_to_end_rows_match_the_reference_with_no_nms():
    images = frames(CAR_CLIP, CAR_FRAMES)
    _, results = vapipe_detect(YOLO26, images)
    for image, found in zip(images, results, strict=True):
        blob, gain, left, top, _, _ = letterbox_blob(image, (640, 640))
        rows = raw_outputs(YOLO26, blob)[0][0][0]  # (300, 6): x1 y1 x2 y2 score class
        rows = rows[rows[:, 4] > 0.25]
        boxes = np.clip(to_source(rows[:, :4], gain, left, top), 0, [768, 432, 768, 432])
        assert_same(found, boxes, rows[:, 4], rows[:, 5].astype(int))


@pytest.mark.parametrize(
    ("clip", "plausible"),
    # The car clip films small cars from straight above: COCO nano models (YOLO26n, YOLOv5n,
    # YOLO11n-seg alike) see few of them and call most "cell phone" (and a few "sink" on an
    # AVX-512 VNNI CPU: 6 cell phone, 3 sink, 2 car, 2 bus in 37 frames). Over every 10th
    # frame, so that one instruction set's borderline box cannot decide it: the most frequent
    # label and most of the labels are real COCO classes that fit, not ids.
    [(CAR_CLIP, {"car", "truck", "bus", "cell phone"}), (BOTTLE_CLIP, {"bottle"})],
)
def test_yolo26_on_the_shared_clips_sees_plausible_classes(clip, plausible):
    _, results = vapipe_detect(YOLO26, frames(clip, set(range(0, 370, 10))))
    labels = [found.label(int(c)) for found in results for c in found.class_ids]
    assert len(labels) >= 10, f"only {len(labels)} detections"
    top = max(set(labels), key=labels.count)
    fitting = sum(label in plausible for label in labels) / len(labels)
    assert top in plausible, f"most frequent label {top!r} of {sorted(set(labels))}"
    assert fitting >= 0.6, f"{fitting:.0%} of {labels} fit"


def test_yolov5_objectness_times_class_matches_the_reference():
    images = frames(CAR_CLIP, CAR_FRAMES)
    fitted, results = vapipe_detect(YOLOV5, images)
    assert fitted.names[2] == "car"
    for image, found in zip(images, results, strict=True):
        blob, gain, left, top, _, _ = letterbox_blob(image, (416, 416))
        p = raw_outputs(YOLOV5, blob)[0][0][0]  # (10647, 85)
        p = p[p[:, 4] > 0.25]
        score_all = p[:, 4:5] * p[:, 5:]
        classes = score_all.argmax(1)
        scores = score_all.max(1)
        p, classes, scores = p[scores > 0.25], classes[scores > 0.25], scores[scores > 0.25]
        xyxy = np.concatenate([p[:, :2] - p[:, 2:4] / 2, p[:, :2] + p[:, 2:4] / 2], 1)
        keep = greedy_nms(xyxy, scores, classes, 0.7)
        boxes = np.clip(to_source(xyxy[keep], gain, left, top), 0, [768, 432, 768, 432])
        assert_same(found, boxes, scores[keep], classes[keep])


def test_omz_boxes_and_labels_match_the_reference():
    images = frames(CAR_CLIP, CAR_FRAMES)
    _, results = vapipe_detect(PVB2004, images)
    for image, found in zip(images, results, strict=True):
        blob = cv2.resize(image, (448, 256)).transpose(2, 0, 1)[None].astype(np.float32)
        outputs, compiled = raw_outputs(PVB2004, blob)
        named = {next(iter(o.get_names() & {"boxes", "labels"})): v
                 for o, v in zip(compiled.outputs, outputs, strict=True)}  # fmt: skip
        rows, labels = named["boxes"], named["labels"]
        keep = rows[:, 4] > 0.5
        boxes = rows[keep, :4] * np.array([768 / 448, 432 / 256] * 2)
        assert_same(found, np.clip(boxes, 0, [768, 432, 768, 432]), rows[keep, 4],
                    labels[keep].astype(int))  # fmt: skip


def test_segmentation_masks_match_the_reference_by_iou():
    images = frames(CAR_CLIP, CAR_FRAMES)
    _, results = vapipe_detect(SEG, images)
    for image, found in zip(images, results, strict=True):
        blob, gain, left, top, nw, nh = letterbox_blob(image, (640, 640))
        (pred, protos), _ = raw_outputs(SEG, blob, (640, 640))
        if pred.shape[1] == 32:
            pred, protos = protos, pred
        pred, protos = pred[0], protos[0]  # (116, 8400), (32, 160, 160)
        scores_all = pred[4:84]
        classes, scores = scores_all.argmax(0), scores_all.max(0)
        sel = scores > 0.25
        cand, classes, scores = pred[:, sel], classes[sel], scores[sel]
        xyxy = np.stack([cand[0] - cand[2] / 2, cand[1] - cand[3] / 2,
                         cand[0] + cand[2] / 2, cand[1] + cand[3] / 2], 1)  # fmt: skip
        keep = greedy_nms(xyxy, scores, classes, 0.7)
        boxes = np.clip(to_source(xyxy[keep], gain, left, top), 0, [768, 432, 768, 432])
        mine, order = assert_same(found, boxes, scores[keep], classes[keep])
        for m, r in zip(mine, order, strict=True):
            coef = cand[84:, keep[r]]
            proto_mask = 1 / (1 + np.exp(-(coef @ protos.reshape(32, -1)))).reshape(160, 160)
            # the image region inside the letterbox, at 1/4 scale, resized to the source
            region = proto_mask[top // 4 : (top + nh) // 4, left // 4 : (left + nw) // 4]
            ref = cv2.resize(region, (768, 432), interpolation=cv2.INTER_LINEAR) > 0.5
            x1, y1, x2, y2 = boxes[r]
            cut = np.zeros_like(ref)
            cut[int(np.ceil(y1)) : int(np.ceil(y2)), int(np.ceil(x1)) : int(np.ceil(x2))] = True
            ref &= cut
            got = found.masks[m]
            union = (ref | got).sum()
            assert union > 0
            iou = (ref & got).sum() / union
            assert iou >= 0.95, f"mask IoU {iou:.3f} for detection {m}"


def test_pose_keypoints_match_the_reference_within_a_pixel():
    images = frames(PERSON_CLIP, {100, 400, 1000})
    _, results = vapipe_detect(POSE, images)
    for image, found in zip(images, results, strict=True):
        blob, gain, left, top, _, _ = letterbox_blob(image, (640, 640))
        pred = raw_outputs(POSE, blob, (640, 640))[0][0][0]  # (56, 8400)
        sel = pred[4] > 0.25
        cand, scores = pred[:, sel], pred[4, sel]
        xyxy = np.stack([cand[0] - cand[2] / 2, cand[1] - cand[3] / 2,
                         cand[0] + cand[2] / 2, cand[1] + cand[3] / 2], 1)  # fmt: skip
        classes = np.zeros(len(scores), int)
        keep = greedy_nms(xyxy, scores, classes, 0.7)
        boxes = np.clip(to_source(xyxy[keep], gain, left, top), 0, [768, 432, 768, 432])
        mine, order = assert_same(found, boxes, scores[keep], classes[keep])
        kpts = cand[5:, keep].T.reshape(-1, 17, 3)
        xy = np.clip(to_source(kpts[:, :, :2], gain, left, top), 0, [768, 432])  # as Ultralytics
        np.testing.assert_allclose(found.keypoints[mine, :, :2], xy[order], atol=1.0)
        np.testing.assert_allclose(found.keypoints[mine, :, 2], kpts[order, :, 2], atol=1e-3)


# --- misreads refused ---------------------------------------------------------------------


@pytest.mark.parametrize(("model", "shape"), [(YOLO26, "[1,300,6]"), (YOLOV5, "[1,10647,85]")])
def test_forcing_the_yolo_adapter_on_another_layout_is_refused_in_one_line(model, shape, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--model", str(model), "--adapter", "yolo",
         "--no-progress", "--out", str(tmp_path / "out.jsonl"), str(CAR_CLIP)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "adapter yolo does not fit" in lines[0] and shape in lines[0]
    assert not (tmp_path / "out.jsonl").exists() or not (tmp_path / "out.jsonl").read_text()


def test_yolo_adapter_refuses_a_model_whose_names_disagree_with_its_classes():
    loaded = load_model(CORE, POSE)  # [1, 56, 8400] would read as 52 classes; it names 1
    fix_input_size(loaded.model, loaded.info, None, "test")
    from pipeline.errors import AdapterError

    with pytest.raises(AdapterError, match="reads 52 classes but the model names 1"):
        create_adapter(loaded.model, "yolo", names=loaded.names, info=loaded.info)
