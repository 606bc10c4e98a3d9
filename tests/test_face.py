"""Face forgery detector: the shared crop, tracking, and the shipped model on real and generated inputs."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_video
from PIL import Image

from detector.config import PROJECT_ROOT, Limits
from detector.engine.interface import Finding, NotApplicable
from detector.faces import DetectedFace, align_crop, crop_transform, iou, map_points, track_faces
from detector.media import MediaError, MediaInput, VideoMedia, decode
from detector.metrics import auc

MODEL_DIR = PROJECT_ROOT / "models" / "face-forgery"


# ---- shared crop and tracking (no model needed) -----------------------------------------------------------------

def _face(box, left_eye, right_eye) -> DetectedFace:
    x0, y0, x1, y1 = box
    landmarks = np.array([left_eye, right_eye, [(x0 + x1) / 2, (y0 + y1) / 2], [x0 + 10, y1 - 10], [x1 - 10, y1 - 10]],
                         np.float32)
    return DetectedFace(box=np.array(box, np.float32), confidence=0.99, landmarks=landmarks)


def test_align_crop_levels_the_eyes_and_keeps_the_size():
    frame = np.random.default_rng(0).integers(0, 255, (400, 600, 3), dtype=np.uint8)
    face = _face([200, 100, 320, 240], [230, 150], [290, 180])       # head tilted ~27 degrees
    crop, matrix = align_crop(frame, face)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    eyes = map_points(matrix, face.landmarks[:2])
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.5 and eyes[0, 0] < eyes[1, 0]
    centre = map_points(matrix, np.array([[260, 170]]))[0]
    assert np.allclose(centre, [112, 112], atol=0.5)
    # the warp is the same one the matrix describes: sample a pixel through the inverse mapping
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    x, y = map_points(inverse, np.array([[112, 112]]))[0]
    assert np.abs(crop[112, 112].astype(int) - frame[int(round(y)), int(round(x))].astype(int)).max() < 80


def test_align_crop_stays_inside_the_frame_for_tightly_framed_faces():
    frame = np.full((300, 300, 3), 200, np.uint8)
    face = _face([20, -40, 290, 330], [100, 120], [200, 122])          # the face is larger than the photo
    matrix = crop_transform(face, frame.shape)
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    corners = map_points(inverse, np.array([[0, 0], [224, 0], [0, 224], [224, 224]]))
    assert corners.min() >= -0.5 and corners.max() <= 300.5
    crop, _ = align_crop(frame, face)
    assert crop.min() == 200                                          # no black padding anywhere


def test_align_crop_shrinks_large_faces_without_aliasing():
    stripes = np.zeros((2000, 2000, 3), np.uint8)
    stripes[:, ::2] = 255                                             # finest possible detail
    crop, _ = align_crop(stripes, _face([200, 200, 1800, 1800], [600, 800], [1400, 800]))
    assert abs(float(crop.mean()) - 127.5) < 10 and crop.std() < 40   # averaged to grey, not moire


def test_tracking_follows_two_faces_across_a_gap():
    boxes = []
    for frame in range(10):
        left = np.array([10 + 3 * frame, 20, 60 + 3 * frame, 80], float)
        right = np.array([200 - 2 * frame, 30, 260 - 2 * frame, 100], float)
        boxes.append([left] if frame == 4 else [right, left])          # frame 4 misses the right face
    tracks = track_faces(boxes)
    assert len(tracks) == 2
    lengths = sorted(len(t.detections) for t in tracks)
    assert lengths == [9, 10]
    assert tracks[0].detections[:2] == [(0, 0), (1, 0)]                 # the right face, first seen first
    assert track_faces([[np.array([0, 0, 10, 10.0])], [np.array([50, 50, 60, 60.0])]])[1].detections == [(1, 0)]


# ---- the shipped detector -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def detector():
    from detector.engine.registry import load, specs
    spec = next(s for s in specs() if s.name == "face-forgery")
    loaded = load(spec, MODEL_DIR.parent, torch.device("cpu"))
    if isinstance(loaded, NotApplicable):
        pytest.skip(loaded.reason)
    return loaded


def _scan(detector, media, explain: bool = False) -> Finding | NotApplicable:
    prepared = detector.preprocess(media)
    if isinstance(prepared, NotApplicable):
        return prepared
    with torch.inference_mode():
        outputs = detector.forward(torch.stack(prepared.units))
    return detector.summarize(prepared, list(outputs), explain)


def _decode_path(path: Path, frames: int = 32):
    return decode(MediaInput.from_path(path), Limits(video_frames=frames))


@pytest.fixture(scope="module")
def held_out(dev_data) -> dict[str, list[Path]]:
    """A few held-out (test split) dev files of each kind, named by the shipped splits.json."""
    splits = json.loads((MODEL_DIR / "splits.json").read_text())["files"]["test"]
    real = splits["deforgify/real"][:4] + splits["simswap-crops/real"][:1]
    fake = splits["deforgify/gan"][:4]
    to_path = lambda key: dev_data / key.split(":", 1)[1]                        # noqa: E731
    return {"real": [to_path(k) for k in real], "fake": [to_path(k) for k in fake]}


def test_held_out_gan_faces_score_above_held_out_real_faces(detector, held_out):
    scores, labels = [], []
    for label, paths in ((0, held_out["real"]), (1, held_out["fake"])):
        for path in paths:
            finding = _scan(detector, _decode_path(path))
            assert isinstance(finding, Finding), f"{path}: {finding}"
            assert 0.0 <= finding.score <= 1.0
            scores.append(finding.score)
            labels.append(label)
    labels, scores = np.array(labels), np.array(scores)
    assert scores[labels == 1].mean() > scores[labels == 0].mean(), list(zip(labels, scores))
    assert auc(labels, scores) >= 0.75, list(zip(labels, scores))


def _reencoded(path: Path, change: str) -> bytes:
    image = Image.open(path).convert("RGB")
    out = io.BytesIO()
    if change.startswith("jpeg"):
        image.save(out, "JPEG", quality=int(change[4:]))
    else:
        factor = float(change[5:])
        image.resize((round(image.width * factor), round(image.height * factor)), Image.BICUBIC).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("change", ["jpeg50", "jpeg95", "scale0.6", "scale1.6"])
def test_jpeg_quality_format_and_resolution_do_not_move_the_verdict(detector, held_out, change):
    """The same faces re-encoded or resized keep their ranking and nearly their scores: no format shortcut."""
    labels, before, after = [], [], []
    for label, paths in ((0, held_out["real"]), (1, held_out["fake"])):
        for path in paths:
            changed = _scan(detector, decode(MediaInput(path.name, data=_reencoded(path, change)), Limits()))
            assert isinstance(changed, Finding), f"{path} {change}: {changed}"
            labels.append(label)
            before.append(_scan(detector, _decode_path(path)).score)
            after.append(changed.score)
    shift = np.abs(np.array(after) - np.array(before))
    assert auc(np.array(labels), np.array(after)) >= 0.9, list(zip(labels, before, after))
    assert np.median(shift) <= 0.1 and shift.max() <= 0.35, list(zip(labels, before, after))


def test_every_face_gets_its_own_box_and_score_and_explain_adds_a_heatmap(detector, dev_data):
    pair = Image.new("RGB", (480, 260), (200, 200, 200))
    for x, name in ((10, "2.jpg"), (250, "1_source.jpg")):
        pair.paste(Image.open(dev_data / "face/simswap-crops/real" / name).convert("RGB"), (x, 18))
    media = _media_from(np.asarray(pair))
    finding = _scan(detector, media, explain=True)
    faces = finding.evidence["faces"]
    assert len(faces) == 2
    assert faces[0]["box"] != faces[1]["box"]
    assert finding.score == max(f["score"] for f in faces)
    png = Image.open(io.BytesIO(base64.b64decode(faces[0]["heatmap_png"])))
    assert png.format == "PNG" and png.size == (224, 224)
    json.dumps(finding.evidence)                                                # JSON-serializable as is
    assert "heatmap_png" not in _scan(detector, media).evidence["faces"][0]


def test_a_face_the_texture_probe_flags_gets_a_heatmap_from_the_probe_s_feature_map(dev_data):
    """The shipped GAN logit is the larger of the GAN head's and the texture probe's: when the probe decides, the
    Grad-CAM comes from its (frozen) trunk, not from a head that did not decide (which would draw nothing)."""
    from detector.detectors.face.model import FaceForgeryDetector
    from detector.detectors.face.network import HEADS, normalize
    from detector.engine.bundle import ModelBundle

    bundle = ModelBundle.load("face-forgery", MODEL_DIR)
    if not bundle.config.get("texture_probe_blocks"):
        pytest.skip("the shipped bundle has no texture probe")
    detector = FaceForgeryDetector(bundle, torch.device("cpu"))
    crop = np.asarray(Image.open(dev_data / "face/simswap-crops/real/2.jpg").convert("RGB").resize((224, 224)))
    unit = normalize(torch.from_numpy(crop.copy()), detector.input_size)
    gan = HEADS.index("gan")
    with torch.no_grad():
        detector.net.texture.linear.bias += 100.0                              # the probe decides
    features, _ = detector.net.explained_logit(unit.unsqueeze(0), gan)
    assert features.shape[1] == detector.net.texture.trunk[-1].out_channels
    overlay = np.asarray(Image.open(io.BytesIO(base64.b64decode(detector.heatmap(crop, unit, gan))))).astype(float)
    tint = overlay - 0.55 * crop                                                # the colour map's share
    assert tint.std(axis=(0, 1)).max() > 5.0                                    # not one flat colour
    with torch.no_grad():
        detector.net.texture.linear.bias -= 200.0                              # the GAN head decides
    features, _ = detector.net.explained_logit(unit.unsqueeze(0), gan)
    assert features.shape[1] == detector.net.features[-1][0].out_channels


def test_the_network_reads_crops_at_the_size_the_bundle_was_trained_at(detector, dev_data):
    trained_at = json.loads((MODEL_DIR / "config.json").read_text())["input_size"]
    assert detector.input_size == trained_at
    photo = np.asarray(Image.open(dev_data / "face/deforgify/real/real_1.jpg").convert("RGB"))
    prepared = detector.preprocess(_media_from(photo))
    assert prepared.units[0].shape == (3, trained_at, trained_at)


def test_no_face_is_not_applicable(detector):
    y, x = np.mgrid[0:240, 0:320]
    landscape = np.stack([x % 256, y % 256, (x * y) % 256], axis=2).astype(np.uint8)
    result = _scan(detector, _media_from(landscape))
    assert isinstance(result, NotApplicable) and result.reason == "no face found"


def test_a_face_below_the_minimum_size_is_not_scored(detector, dev_data):
    face = Image.open(dev_data / "face/deforgify/real/real_1.jpg").convert("RGB").resize((28, 28))
    canvas = Image.new("RGB", (400, 300), (90, 120, 150))
    canvas.paste(face, (180, 130))
    result = _scan(detector, _media_from(np.asarray(canvas)))
    assert isinstance(result, NotApplicable) and result.reason == "no face found"


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory, dev_data) -> dict[str, Path]:
    """One real dev photo saved as grey, CMYK, RGBA with a transparent margin, and EXIF-rotated."""
    root = tmp_path_factory.mktemp("odd")
    photo = Image.open(dev_data / "face/simswap-crops/real/2.jpg").convert("RGB")
    files = {"grey": root / "grey.png", "cmyk": root / "cmyk.jpg", "alpha": root / "alpha.png",
             "exif": root / "rotated.jpg"}
    photo.convert("L").save(files["grey"])
    photo.convert("CMYK").save(files["cmyk"], quality=92)
    rgba = Image.new("RGBA", (photo.width + 80, photo.height + 80), (0, 0, 0, 0))
    rgba.paste(photo, (40, 40))
    rgba.save(files["alpha"])
    exif = Image.Exif()
    exif[0x0112] = 6                                                           # shown rotated 90 degrees clockwise
    photo.rotate(90, expand=True).save(files["exif"], quality=92, exif=exif.tobytes())
    return files


@pytest.mark.parametrize("kind", ["grey", "cmyk", "alpha", "exif"])
def test_unusual_image_formats_are_scored(detector, odd_images, kind):
    media = _decode_path(odd_images[kind])
    finding = _scan(detector, media)
    assert isinstance(finding, Finding), finding
    assert len(finding.evidence["faces"]) == 1 and 0.0 <= finding.score <= 1.0
    x0, y0, x1, y1 = finding.evidence["faces"][0]["box"]
    assert y1 - y0 > 0.8 * (x1 - x0)                                            # an upright face, not a sideways one


def test_a_video_without_decodable_frames_is_handled(detector, tmp_path):
    empty = VideoMedia(frames=[], timestamps=[], duration=0.0, fps=25.0, format="mp4")
    result = detector.preprocess(empty)
    assert isinstance(result, NotApplicable) and "no decodable frames" in result.reason
    broken = tmp_path / "broken.mp4"
    good = tmp_path / "good.mp4"
    _write_face_video(good, [np.zeros((64, 64, 3), np.uint8)] * 3)
    broken.write_bytes(good.read_bytes()[:200])
    with pytest.raises(MediaError):
        _decode_path(broken)


def _media_from(rgb: np.ndarray):
    from detector.media import ImageMedia
    return ImageMedia(rgb=rgb, format="png")


def _write_face_video(path: Path, frames: list[np.ndarray], fps: int = 8) -> Path:
    height, width = frames[0].shape[:2]
    return write_video(path, "libx264", frames=len(frames), fps=fps, size=(width, height),
                       draw=lambda index, _w, _h: frames[index])


def test_video_faces_are_tracked_and_scored_per_track(detector, dev_data, tmp_path):
    """Two real faces drift across a 10-frame clip; the second leaves halfway. Two tracks with their own times."""
    first = np.asarray(Image.open(dev_data / "face/simswap-crops/real/2.jpg").convert("RGB").resize((120, 120)))
    second = np.asarray(Image.open(dev_data / "face/simswap-crops/real/1_source.jpg").convert("RGB")
                        .resize((120, 120)))
    frames = []
    for index in range(10):
        canvas = np.full((240, 400, 3), 60, np.uint8)
        canvas[40:160, 10 + 6 * index:130 + 6 * index] = first
        if index < 5:
            canvas[60:180, 260:380] = second
        frames.append(canvas)
    media = _decode_path(_write_face_video(tmp_path / "two.mp4", frames), frames=10)
    finding = _scan(detector, media, explain=True)
    assert isinstance(finding, Finding)
    tracks = sorted(finding.evidence["tracks"], key=lambda t: -t["faces"])
    assert len(tracks) == 2 and tracks[0]["faces"] >= 9 and 4 <= tracks[1]["faces"] <= 5
    assert tracks[1]["end"] < tracks[0]["end"]
    assert finding.score == pytest.approx(max(t["score"] for t in tracks), abs=1e-4)
    assert sum("heatmap_png" in f for f in finding.evidence["faces"]) == 2     # the top face of each track
    for start, end in finding.evidence["suspicious_ranges"]:
        assert 0 <= start <= end <= media.duration
    json.dumps(finding.evidence)


def test_video_faces_are_scored_by_the_heads_the_bundle_names_for_video(detector, held_out, tmp_path, monkeypatch):
    """A held-out StyleGAN2 face as a clip: the shipped bundle scores video faces with the face-swap head alone
    (config `video_heads`), so its GAN head, which fires on this face, does not decide the clip; images still read both
    heads, and a bundle naming both heads scores the clip by the larger one."""
    from detector.detectors.face.network import HEADS

    assert json.loads((MODEL_DIR / "config.json").read_text())["video_heads"] == ["face_swap"]
    face = np.asarray(Image.open(held_out["fake"][0]).convert("RGB").resize((160, 160)))
    frames = []
    for index in range(8):
        canvas = np.full((240, 320, 3), 90, np.uint8)
        canvas[40:200, 60 + 8 * index:220 + 8 * index] = face
        frames.append(canvas)
    media = _decode_path(_write_face_video(tmp_path / "gan.mp4", frames), frames=8)
    probability = detector.calibration.probability
    logit = lambda p: float(np.log(max(p, 1e-6) / max(1 - p, 1e-6)))    # heads are rounded sigmoids  # noqa: E731

    swap_only = _scan(detector, media, explain=True)
    for face in swap_only.evidence["faces"]:
        assert face["score"] == pytest.approx(float(probability(logit(face["heads"]["face_swap"]))), abs=2e-3)
        assert face["kind"] in (None, "face_swap")
    assert sum("heatmap_png" in f for f in swap_only.evidence["faces"]) == 1
    (track,) = swap_only.evidence["tracks"]                 # every head's mean score, for a moderator to read
    assert track["heads"]["gan"] == pytest.approx(np.mean([f["heads"]["gan"] for f in swap_only.evidence["faces"]]),
                                                  abs=1e-3)

    image = _scan(detector, _media_from(frames[0]))
    (image_face,) = image.evidence["faces"]
    assert image.score == pytest.approx(float(probability(max(map(logit, image_face["heads"].values())))), abs=2e-3)

    monkeypatch.setattr(detector, "video_heads", list(range(len(HEADS))))
    both = _scan(detector, media)
    for face in both.evidence["faces"]:
        assert face["score"] == pytest.approx(float(probability(max(map(logit, face["heads"].values())))), abs=2e-3)
    assert both.score > swap_only.score


def test_frames_smaller_than_a_face_find_no_face():
    from detector.faces.detect import FaceFinder

    finder = FaceFinder(min_face_size=64)
    frames = [np.full((48, 64, 3), 128, np.uint8)] * 3
    assert finder.detect_many(frames) == [[], [], []]


@pytest.fixture(scope="module")
def finder():
    from detector.faces.detect import FaceFinder
    return FaceFinder(min_face_size=40)


def test_the_cascade_finds_what_facenets_mtcnn_finds(finder, dev_data):
    """detect.py drives facenet's three networks itself (for speed); the faces must stay facenet's faces."""
    from facenet_pytorch import MTCNN

    reference = MTCNN(keep_all=True, device="cpu", min_face_size=36, post_process=False)
    pair = Image.new("RGB", (480, 260), (200, 200, 200))
    for x, name in ((10, "2.jpg"), (250, "1_source.jpg")):
        pair.paste(Image.open(dev_data / "face/simswap-crops/real" / name).convert("RGB"), (x, 18))
    photos = [np.asarray(pair)] + [np.asarray(Image.open(dev_data / f"face/deforgify/{kind}").convert("RGB"))
                                   for kind in ("real/real_1.jpg", "fake/fake_1.jpg")]
    for rgb in photos:
        found = finder.detect(rgb)
        boxes, probabilities = reference.detect(rgb)
        expected = [box for box, p in zip(boxes, probabilities) if p >= finder.min_confidence]
        assert len(found) == len(expected) >= 1
        for face in found:
            assert max(iou(face.box, box) for box in expected) > 0.85
            eyes = face.landmarks[:2]
            assert face.box[0] < eyes[:, 0].min() and eyes[:, 0].max() < face.box[2]


def test_frames_between_key_frames_find_the_moving_face_and_drop_the_one_that_left(dev_data):
    from detector.faces.detect import FaceFinder

    face = np.asarray(Image.open(dev_data / "face/simswap-crops/real/2.jpg").convert("RGB").resize((110, 110)))
    other = np.asarray(Image.open(dev_data / "face/simswap-crops/real/1_source.jpg").convert("RGB").resize((110, 110)))
    frames = []
    for index in range(11):
        canvas = np.full((240, 480, 3), 70, np.uint8)
        canvas[50:160, 10 + 12 * index:120 + 12 * index] = face           # moves 12 px per frame
        if index < 6:
            canvas[100:210, 360:470] = other                                 # leaves after frame 5 (key frames 0, 4, 8)
        frames.append(canvas)
    every = FaceFinder(min_face_size=40).detect_many(frames)
    keyed = FaceFinder(min_face_size=40, key_frame_every=4).detect_many(frames)
    assert [len(f) for f in every] == [2] * 6 + [1] * 5
    assert [len(f) for f in keyed] == [len(f) for f in every]
    for full, quick in zip(every, keyed):
        for a in full:
            assert max(iou(a.box, b.box) for b in quick) > 0.8


def test_samples_far_apart_in_time_each_get_the_full_face_search(detector, dev_data, monkeypatch):
    """A long video's samples lie seconds apart, where a face has moved far from where a key frame saw it: then
    every sampled frame gets the full search, and every one of them yields its face (re-checking would lose some)."""
    face = np.asarray(Image.open(dev_data / "face/simswap-crops/real/2.jpg").convert("RGB").resize((120, 120)))
    frames = []
    for index in range(9):
        canvas = np.full((360, 640, 3), 70, np.uint8)
        left = [20, 500, 260, 40, 480, 200, 420, 60, 300][index]               # the face jumps between samples
        canvas[120:240, left:left + 120] = face
        frames.append(canvas)

    def faces_per_frame(seconds_apart: float) -> list[int]:
        media = VideoMedia(frames=frames, timestamps=[seconds_apart * i for i in range(9)], duration=9 * seconds_apart,
                           fps=25.0, format="mp4")
        prepared = detector.preprocess(media)
        return [sum(f.frame == i for f in prepared.context["faces"]) for i in range(9)]

    assert faces_per_frame(2.0) == [1] * 9
    monkeypatch.setattr(detector.video_finder, "recheck_within_seconds", 10.0)     # the same samples, re-checked
    assert faces_per_frame(2.0) != [1] * 9
