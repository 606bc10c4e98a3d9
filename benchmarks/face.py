"""Face-forgery speed: network images/s on 224 px face crops, whole-pipeline images/s on 224 px face photos, and
seconds per 32-frame video (a 3 s clip without and with a speech soundtrack, which the voice detector scores on the
same pass, and a long clip), all through the project's own code (scan() for all but the first).

Run by hand:  .venv/bin/python benchmarks/face.py [--images 48] [--videos 3] [--long-seconds 60] [--threads 2] [--write]
On a GPU: `--device cuda --batch 64` also compares every score and verdict with a CPU scan of the same photos.
Needs models/face-forgery and the dev faces (../shared/data/dev). `--write` stores the figures in
models/face-forgery/speed.json (speed_gpu.json on CUDA), which the model card's speed section is rendered from
(`python -m training.face card` refreshes the card; `export` and `evaluate` do it too).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import soundfile
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # run from anywhere: training/ is not installed
from detector.config import PROJECT_ROOT, EngineConfig, ScanConfig
from detector.detectors.face.network import normalize
from detector.engine.registry import load, specs
from detector.engine.runner import Engine
from detector.scan import Scanner
from training.face import face_clip

DEV_FACES = PROJECT_ROOT.parent / "shared" / "data" / "dev" / "face" / "deforgify" / "real"
DEV_SPEECH = PROJECT_ROOT.parent / "shared" / "data" / "dev" / "speech" / "librispeech" / "real"


def face_photos(folder: Path, count: int) -> list[Path]:
    """Dev face photos resized to 224 x 224 (a face filling a 224 px image), saved as JPEG."""
    paths = []
    for index, source in enumerate(sorted(DEV_FACES.glob("*.jpg"))[:count]):
        path = folder / f"face_{index}.jpg"
        Image.open(source).convert("RGB").resize((224, 224), Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def with_soundtrack(video: Path, out: Path) -> Path:
    """`video` with a dev LibriSpeech recording (16 kHz, repeated to the video's length) as its AAC soundtrack."""
    speech, rate = soundfile.read(sorted(DEV_SPEECH.glob("*.flac"))[0], dtype="float32")
    with av.open(str(video)) as source, av.open(str(out), "w") as target:
        frames_in = source.streams.video[0]
        frames_out = target.add_stream_from_template(frames_in)
        sound = target.add_stream("aac", rate=rate, layout="mono")
        samples = np.resize(speech, round(float(source.duration / av.time_base) * rate))
        for packet in source.demux(frames_in):
            if packet.dts is not None:
                packet.stream = frames_out
                target.mux(packet)
        for start in range(0, samples.size, 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in sound.encode(frame):
                target.mux(packet)
        for packet in sound.encode(None):
            target.mux(packet)
    return out


def crops_per_second(engine: Engine, batch: int, rounds: int = 4) -> tuple[float, int]:
    """The network alone on a batch of 224 px crops, through the engine's forward (autocast and channels-last on
    CUDA), as the detector feeds them; crops/s and the network's input side."""
    spec = next(s for s in specs() if s.name == "face-forgery")
    detector = load(spec, PROJECT_ROOT / "models", engine.device)
    crops = np.random.default_rng(0).integers(0, 256, (batch, 224, 224, 3), dtype=np.uint8)
    units = [normalize(torch.from_numpy(crop), detector.input_size) for crop in crops]
    engine.forward(detector, units)                             # warm-up
    started = time.perf_counter()
    for _ in range(rounds):
        engine.forward(detector, units)                         # returns on the CPU: the GPU has finished
    return batch * rounds / (time.perf_counter() - started), detector.input_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--long-seconds", type=int, default=60,
                        help="length of the long 720p clip also timed with --videos (x264's keyframe every 10 s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, default=16, help="engine batch size")
    parser.add_argument("--write", action="store_true",
                        help="store the figures in models/face-forgery/speed.json (speed_gpu.json with --device cuda)")
    args = parser.parse_args()
    engine_config = EngineConfig(threads=args.threads, batch_size=args.batch, device=args.device)
    crops_per_s, input_size = crops_per_second(Engine(engine_config), args.batch)
    figures = {"device": args.device, "threads": args.threads, "batch": args.batch,
               "load_average_1min": round(os.getloadavg()[0], 1),
               "crops_per_s_network": round(crops_per_s, 1), "network_input_size": input_size}
    scanner = Scanner(ScanConfig(engine=engine_config))
    with tempfile.TemporaryDirectory() as tmp:
        photos = face_photos(Path(tmp), args.images)
        scanner.scan(photos[:args.batch])                       # load the model; a full batch warms up its kernels
        started = time.perf_counter()
        results = scanner.scan(photos)
        elapsed = time.perf_counter() - started
        figures["face_photos_224px_per_s_pipeline"] = round(len(photos) / elapsed, 1)
        figures["face_photos_scored"] = sum(r.score is not None for r in results)
        if args.device != "cpu":                                # reduced precision must not move the verdicts
            cpu = Scanner(ScanConfig(engine=dataclasses.replace(engine_config, device="cpu"))).scan(photos)
            figures["max_score_difference_vs_cpu"] = round(max(
                (abs(a.score - b.score) for a, b in zip(results, cpu) if a.score is not None and b.score is not None),
                default=float("nan")), 4)
            figures["verdicts_differing_from_cpu"] = sum(a.verdict != b.verdict for a, b in zip(results, cpu))
        if args.videos:
            face = np.asarray(Image.open(sorted(DEV_FACES.glob("*.jpg"))[0]).convert("RGB"))     # 300 px
            video = face_clip(face, Path(tmp) / "clip.mp4", frames=90, size=(1280, 720), fps=30)
            talking = with_soundtrack(video, Path(tmp) / "talking.mp4")
            long_clip = face_clip(face, Path(tmp) / "long.mp4", frames=args.long_seconds * 25, size=(1280, 720),
                                  fps=25)
            scanner.scan([talking])                             # load the voice model
            timings: dict[Path, list[float]] = {video: [], talking: [], long_clip: []}
            last = {}                                           # each clip's last result
            for _ in range(args.videos):
                for clip, clip_timings in timings.items():
                    started = time.perf_counter()
                    last[clip], = scanner.scan([clip])
                    clip_timings.append(time.perf_counter() - started)
            figures["long_video_seconds"] = args.long_seconds
            figures["long_video_faces_scored"] = len(last[long_clip].evidence.get("faces", []))
            figures["seconds_per_long_720p_video"] = round(float(np.median(timings[long_clip])), 2)
            figures["seconds_per_32_frame_720p_video"] = round(float(np.median(timings[video])), 2)
            figures["seconds_per_32_frame_720p_video_with_soundtrack"] = round(float(np.median(timings[talking])), 2)
            result = last[talking]
            figures["video_faces_scored"] = len(result.evidence.get("faces", []))
            figures["soundtrack_windows_scored"] = result.evidence["soundtrack"]["evidence"].get("windows_scored", 0)
    print(json.dumps(figures, indent=1))
    if args.write:
        bundle = PROJECT_ROOT / "models" / "face-forgery"
        figures["date"] = datetime.date.today().isoformat()
        figures["model_version"] = json.loads((bundle / "config.json").read_text())["version"]
        name = "speed.json"
        if args.device == "cuda":
            figures["gpu"], name = torch.cuda.get_device_name(), "speed_gpu.json"
        (bundle / name).write_text(json.dumps(figures, indent=1) + "\n")
        print(f"wrote models/face-forgery/{name}; refresh the card with `python -m training.face card`")


if __name__ == "__main__":
    main()
