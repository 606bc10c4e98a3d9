"""synthetic-voice speed: real-time factor (processing seconds / audio seconds) on this CPU, and a 2-hour file.

Run by hand:  .venv/bin/python benchmarks/voice.py [--seconds 90] [--threads 1] [--long-hours 2] [--compare BUNDLE...]

The audio is dev-set LibriSpeech speech concatenated to the requested length and written as a 16-bit WAV; it goes
through the whole scan path (sniff, decode to 16 kHz, speech check, windows, batched LCNN, calibration). Two RTFs:
`scan` (everything, decode included) and `model` (speech check + windows + network on the decoded samples).
`--compare` times other synthetic-voice bundles' model RTF in the same run (e.g. an earlier version, from git).
Target: RTF <= 0.01 (100x faster than real time). Note: windows are capped at 48 per file, so files over ~100 s of
speech cost about the same; the per-minute figure below uses a 90 s file, under the cap.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # run from anywhere: training/ is not installed

from detector.config import PROJECT_ROOT, EngineConfig, Limits, ScanConfig
from detector.detectors.voice.model import SyntheticVoiceDetector
from detector.engine.bundle import ModelBundle
from detector.media import MediaInput, decode
from detector.scan import Scanner
from training.voice_data import load_audio, read_dev_speech

RATE = 16000


def speech(seconds: float) -> np.ndarray:
    clips = [c for c in read_dev_speech() if c.source == "librispeech"]
    pieces, total = [], 0
    for clip in clips:
        pieces.append(load_audio(clip.path))
        total += pieces[-1].size
        if total >= seconds * RATE:
            break
    wave = np.concatenate(pieces)
    return np.tile(wave, int(np.ceil(seconds * RATE / wave.size)))[: int(seconds * RATE)]


def model_rtf(detector: SyntheticVoiceDetector, samples: np.ndarray, repeats: int = 3) -> float:
    media = decode_samples(samples)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        prepared = detector.preprocess(media)
        with torch.inference_mode():
            outputs = [detector.forward(torch.stack(prepared.units[i:i + 16]))
                       for i in range(0, len(prepared.units), 16)]
        detector.summarize(prepared, list(torch.cat(outputs)), explain=False)
        best = min(best, time.perf_counter() - started)
    return best / (samples.size / RATE)


def decode_samples(samples: np.ndarray):
    with tempfile.NamedTemporaryFile(suffix=".wav") as fh:
        soundfile.write(fh.name, samples, RATE, subtype="PCM_16")
        return decode(MediaInput.from_path(fh.name), Limits())


def scan_seconds(path: Path, threads: int) -> tuple[float, dict]:
    scanner = Scanner(ScanConfig(engine=EngineConfig(threads=threads, device="cpu")))
    scanner.scan([path])                                     # load the model once
    started = time.perf_counter()
    result = scanner.scan([path])[0]
    return time.perf_counter() - started, result.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=90.0, help="length of the RTF test file")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--long-hours", type=float, default=2.0, help="0 skips the long-file run")
    parser.add_argument("--compare", nargs="*", type=Path, default=[], metavar="BUNDLE",
                        help="other synthetic-voice bundle folders whose model RTF is measured in the same run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    samples = speech(args.seconds)
    for path in [PROJECT_ROOT / "models" / "synthetic-voice", *args.compare]:
        bundle = ModelBundle.load("synthetic-voice", path)
        detector = SyntheticVoiceDetector(bundle, torch.device("cpu"))
        detector.network.eval()
        print(f"model RTF, version {bundle.version} ({args.seconds:.0f} s speech, {args.threads} thread(s)): "
              f"{model_rtf(detector, samples):.4f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        soundfile.write(path, samples, RATE, subtype="PCM_16")
        seconds, result = scan_seconds(path, args.threads)
        print(f"scan RTF (decode included): {seconds / args.seconds:.4f}  verdict {result['verdict']} "
              f"score {result['score']}")
        if args.long_hours > 0:
            long_path = Path(tmp) / "long.wav"
            hours = args.long_hours
            with soundfile.SoundFile(long_path, "w", RATE, 1, subtype="PCM_16") as out:
                for _ in range(int(np.ceil(hours * 3600 / args.seconds))):
                    out.write(samples)
            seconds, result = scan_seconds(long_path, args.threads)
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{hours:g} h file: {seconds:.1f} s (RTF {seconds / (hours * 3600):.5f}), verdict "
                  f"{result['verdict']}, windows {result['evidence'].get('windows_scored')} of "
                  f"{result['evidence'].get('windows_with_speech')}, reason {result['reason']!r}, "
                  f"peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
