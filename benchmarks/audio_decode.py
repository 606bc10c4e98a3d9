"""Audio decoding of long files: seconds and peak memory to 16 kHz mono, per format.

Run by hand:  .venv/bin/python benchmarks/audio_decode.py [--minutes 20]

Writes noise files of the given length (16 kHz mono WAV, 48 kHz stereo WAV, 44.1 kHz stereo MP3) to a temporary
folder, then decodes each in a fresh process (torch imported before the measurement, so only decoding counts) and
prints the seconds and the rise in peak RSS next to the size of the decoded samples. The decoder streams: blocks are
downmixed and resampled as they come, so the peak should stay near the output's size whatever the source rate.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
MEASURE = """
import resource, sys, time
import torch, torchaudio.functional
from detector.config import Limits
from detector.media import MediaInput, decode
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
media = decode(MediaInput.from_path(sys.argv[1]), Limits())
seconds = time.perf_counter() - started
rise = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
print(f"{seconds:.1f} s, peak RSS +{rise:.0f} MB, decoded samples {media.samples.nbytes / 2**20:.0f} MB")
"""


def write_wav(path: Path, rate: int, channels: int, minutes: float, rng: np.random.Generator) -> None:
    with soundfile.SoundFile(path, "w", rate, channels, subtype="PCM_16") as out:
        for _ in range(int(minutes * 60)):
            out.write((rng.standard_normal((rate, channels)) * 0.05).astype(np.float32))


def write_mp3(path: Path, minutes: float, rng: np.random.Generator, rate: int = 44100) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="stereo")
        for second in range(int(minutes * 60)):
            frame = av.AudioFrame.from_ndarray((rng.standard_normal((2, rate)) * 0.05).astype(np.float32),
                                               format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = rate, second * rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        files = {"16 kHz mono WAV": Path(tmp) / "mono16k.wav", "48 kHz stereo WAV": Path(tmp) / "stereo48k.wav",
                 "44.1 kHz stereo MP3": Path(tmp) / "stereo44k.mp3"}
        write_wav(files["16 kHz mono WAV"], 16000, 1, args.minutes, rng)
        write_wav(files["48 kHz stereo WAV"], 48000, 2, args.minutes, rng)
        write_mp3(files["44.1 kHz stereo MP3"], args.minutes, rng)
        for name, path in files.items():
            measured = subprocess.run([sys.executable, "-c", MEASURE, str(path)], cwd=ROOT, capture_output=True,
                                      text=True, check=True)
            print(f"{name}, {args.minutes:g} min ({path.stat().st_size / 2**20:.0f} MB file): "
                  f"{measured.stdout.strip()}")


if __name__ == "__main__":
    main()
