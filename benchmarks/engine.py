"""Engine throughput: items/s with batching vs one item at a time, for a conv-net image workload, in one process.

Run by hand:  .venv/bin/python benchmarks/engine.py [--items 96] [--batch-size 32] [--threads 2]
The workload is torchvision's MobileNetV2 (random init: speed does not depend on the weights) on 224x224 inputs
decoded from JPEG files by the project's media decoder, so decoding and preprocessing overlap the model as in a scan.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from detector.config import EngineConfig, Limits
from detector.engine.bundle import ModelBundle
from detector.engine.calibration import Calibration
from detector.engine.interface import Detector, Finding, Prepared
from detector.engine.runner import Engine, Job
from detector.media import MediaInput, decode

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


class ConvNetWorkload(Detector):
    """Benchmark workload only: a whole-image MobileNetV2 classifier."""

    name = "bench-convnet"
    modalities = ("image",)
    channels_last = True

    def __init__(self, bundle, device):
        super().__init__(bundle, device)
        self.net = torchvision.models.mobilenet_v2(num_classes=1)

    def modules(self):
        return [self.net]

    def preprocess(self, media):
        image = Image.fromarray(media.rgb).resize((224, 224), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(image)).permute(2, 0, 1).float().div(255)
        return Prepared(units=[(x - MEAN) / STD])

    def forward(self, batch):
        return self.net(batch)[:, 0]

    def summarize(self, prepared, outputs, explain):
        return Finding(score=float(self.calibration.probability(outputs[0].item())))


def make_images(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        pixels = rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)
        path = folder / f"img{i}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def throughput(detector: Detector, paths: list[Path], batch_size: int, workers: int, threads: int) -> float:
    engine = Engine(EngineConfig(batch_size=batch_size, prefetch_workers=workers, threads=threads))
    limits = Limits()

    def prepare(path: Path) -> Job:
        return Job(meta=path, detector=detector, prepared=detector.preprocess(decode(MediaInput.from_path(path),
                                                                                     limits)))

    started = time.perf_counter()
    done = list(engine.run(paths, prepare))
    elapsed = time.perf_counter() - started
    assert len(done) == len(paths) and all(isinstance(d.outcome, Finding) for d in done)
    return len(paths) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp), args.items)
        bundle = ModelBundle("bench-convnet", Path(tmp), {"version": "bench"},
                             Calibration("temperature", {"temperature": 1.0}))
        detector = ConvNetWorkload(bundle, torch.device("cpu"))
        detector.net.eval()
        throughput(detector, paths[:8], args.batch_size, 2, args.threads)        # warm-up
        single = throughput(detector, paths, batch_size=1, workers=1, threads=args.threads)
        batched = throughput(detector, paths, batch_size=args.batch_size, workers=2, threads=args.threads)
    print(f"items={args.items} threads={args.threads} torch={torch.__version__}")
    print(f"one at a time : {single:7.1f} items/s")
    print(f"batched ({args.batch_size:>3}) : {batched:7.1f} items/s")
    print(f"ratio         : {batched / single:7.2f}x")


if __name__ == "__main__":
    main()
