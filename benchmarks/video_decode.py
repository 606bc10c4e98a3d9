"""Video frame sampling: seconds to pick 32 frames from a long 720p H.264 clip, by keyframe spacing (GOP).

Run by hand:  .venv/bin/python benchmarks/video_decode.py [--seconds 60] [--frames 32]

Encodes moving test pictures at 25 fps with a keyframe every 250 frames (x264's default), 50 and 12, then samples
`--frames` frames five ways in one run, each from a fresh container: the decoder's own path (seek to a target's
keyframe unless that keyframe is behind the frames already decoded; frames that no frame references are not decoded
while they show before the next target), the same decoding every frame, seeking back to the keyframe for every
target and decoding every frame (what the decoder did before), and one pass with and without skipping. Prints
seconds (and the ratio to one pass over every frame) and frames decoded; compare ratios, the machine is shared.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from detector.config import Limits
from detector.media import video

GOPS = (250, 50, 12)
FPS = 25


def write_clip(path: Path, seconds: float, gop: int) -> Path:
    """A 1280x720 H.264 clip of a drifting gradient with noise (so frames differ as in real footage)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:720, 0:1280]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": "23", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.codec_context.gop_size = gop
        for index in range(int(seconds * FPS)):
            base = ((x + 4 * index) % 256 + (y // 3)) % 256
            rgb = np.stack([base, (base + 85) % 256, (base + 170) % 256], axis=2).astype(np.int16)
            rgb = np.clip(rgb + rng.integers(-12, 12, rgb.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def measure(path: Path, seconds: float, count: int) -> dict[str, tuple[float, int]]:
    """Seconds and frames decoded per sampling strategy."""
    targets = [(i + 0.5) * seconds / count for i in range(count)]
    tolerance = 0.5 / FPS
    decoded = [0]
    real_decoded_frames, real_keyframes = video._decoded_frames, video._keyframe_times

    def seeking():
        return video._sample_by_seeking(path, 0.0, targets, tolerance, Limits())

    def one_pass():
        return video._sample_sequentially(path, 0.0, FPS, targets, tolerance, Limits())

    # (name, sampler, keyframes read first, frames nothing references skipped before a target)
    strategies = [("the decoder: keyframe-aware seeking, skipping", seeking, True, True),
                  ("keyframe-aware seeking, every frame decoded", seeking, True, False),
                  ("seek for every target, every frame (before)", seeking, False, False),
                  ("one pass, skipping", one_pass, True, True),
                  ("one pass, every frame decoded", one_pass, True, False)]
    results = {}
    try:
        for name, sample, keyframes, skipping in strategies:
            def counting(container, stream, *wanted_from, skipping=skipping):
                for frame in real_decoded_frames(container, stream, *(wanted_from if skipping else ())):
                    decoded[0] += 1
                    yield frame

            video._decoded_frames = counting
            # an empty keyframe list makes every target seek, as the decoder did before it read keyframes
            video._keyframe_times = real_keyframes if keyframes else (lambda *args: [])
            decoded[0] = 0
            started = time.perf_counter()
            picked = sample()
            results[name] = (time.perf_counter() - started, decoded[0])
            assert len(picked) == count, (name, len(picked))
    finally:
        video._decoded_frames, video._keyframe_times = real_decoded_frames, real_keyframes
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--frames", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for gop in GOPS:
            clip = write_clip(Path(tmp) / f"gop{gop}.mp4", args.seconds, gop)
            results = measure(clip, args.seconds, args.frames)
            baseline = results["one pass, every frame decoded"][0]
            print(f"keyframe every {gop} frames ({gop / FPS:.1f} s), {args.seconds:.0f} s at {FPS} fps:")
            for name, (seconds, frames) in results.items():
                print(f"  {name:46s} {seconds:6.2f} s ({seconds / baseline:.2f}x), {frames} frames decoded")


if __name__ == "__main__":
    main()
