"""Audio: any supported file to mono float32 at 16 kHz in [-1, 1], refusing over-long audio before decoding it."""

from __future__ import annotations

import io
import math
from pathlib import Path

import av
import numpy as np
import soundfile

from detector.config import Limits
from detector.media.container import container_error, open_container
from detector.media.errors import MediaError
from detector.media.types import AUDIO_RATE, AudioMedia

_SOUNDFILE_FORMATS = {"wav", "flac", "ogg"}
_BLOCK_FRAMES = 1 << 16
# torchaudio's polyphase kernel grows with rate / gcd(rate, 16 kHz). An odd rate (e.g. 22254 Hz) whose reduced
# ratio is over _MAX_REDUCED_RATE is first interpolated to the nearest multiple of _RATE_STEP (a change of well
# under 1 %), which keeps the kernel small.
_MAX_REDUCED_RATE = 1000
_RATE_STEP = 50


def decode_audio(source: Path | bytes, audio_format: str, limits: Limits) -> AudioMedia:
    """Decode to mono (mean over channels) at AUDIO_RATE. WAV/FLAC/OGG through libsndfile, the rest through PyAV."""
    decoded = None
    if audio_format in _SOUNDFILE_FORMATS:
        decoded = _read_with_soundfile(source, limits)
    if decoded is None:
        try:
            decoded = _read_with_pyav(source, limits)
        except av.FFmpegError as exc:
            raise container_error(exc, f"{audio_format.upper()} audio") from exc
    mono, rate, channels = decoded
    if mono.size == 0:
        raise MediaError("empty", "no audio samples")
    duration = mono.size / rate
    _check_duration(duration, limits)
    samples = resample_to_model_rate(finite_samples(mono), rate).astype(np.float32, copy=False)
    return AudioMedia(
        samples=np.clip(samples, -1.0, 1.0, out=samples),          # in place: hours of audio are hundreds of MB
        duration=duration,
        original_sample_rate=rate,
        channels=channels,
        format=audio_format,
    )


def finite_samples(samples: np.ndarray) -> np.ndarray:
    """`samples` as they are when all are finite (one summing pass, no copy: hours of audio are hundreds of MB),
    else a copy with NaN -> 0 and +-inf -> +-1."""
    if np.isfinite(samples.sum(dtype=np.float64)):
        return samples
    return np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)


def resample_to_model_rate(mono: np.ndarray, rate: int) -> np.ndarray:
    """Mono float32 at `rate` to AUDIO_RATE with torchaudio's band-limited resampler."""
    if rate == AUDIO_RATE:
        return mono
    if rate // math.gcd(rate, AUDIO_RATE) > _MAX_REDUCED_RATE:
        step_rate = round(rate / _RATE_STEP) * _RATE_STEP
        length = max(1, round(mono.size * step_rate / rate))
        positions = np.arange(length) * (rate / step_rate)
        mono = np.interp(positions, np.arange(mono.size), mono).astype(np.float32)
        rate = step_rate
    if rate == AUDIO_RATE:
        return mono
    import torch                   # here, not at the top: `detector --help` and the gateway need no torch
    import torchaudio.functional

    resampled = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(mono)), rate, AUDIO_RATE)
    return resampled.numpy()


def _check_duration(seconds: float, limits: Limits) -> None:
    if seconds > limits.max_audio_seconds:
        raise MediaError("too_large",
                         f"audio lasts {seconds:,.1f} s, over the limit of {limits.max_audio_seconds:,.1f} s")


def _read_with_soundfile(source: Path | bytes, limits: Limits) -> tuple[np.ndarray, int, int] | None:
    """(mono, rate, channels), or None when libsndfile cannot read it (PyAV then tries)."""
    handle = str(source) if isinstance(source, Path) else io.BytesIO(source)
    try:
        with soundfile.SoundFile(handle) as sound:
            if sound.samplerate <= 0:
                return None
            _check_duration(sound.frames / sound.samplerate, limits)
            mono, filled = np.empty(max(sound.frames, 0), dtype=np.float32), 0
            for block in sound.blocks(blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
                if filled + len(block) > mono.size:            # the header undercounted the frames
                    mono = np.concatenate([mono[:filled], np.empty(max(mono.size, len(block)), np.float32)])
                block.mean(axis=1, out=mono[filled:filled + len(block)])
                filled += len(block)
            return mono[:filled], sound.samplerate, sound.channels
    except (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError):
        return None


def _read_with_pyav(source: Path | bytes, limits: Limits) -> tuple[np.ndarray, int, int]:
    """Decode the first audio stream packet by packet, downmixing as it goes; damaged packets are skipped."""
    with open_container(source) as container:
        if not container.streams.audio:
            raise MediaError("corrupt", "the container holds no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        channels = stream.codec_context.channels
        declared = _declared_seconds(container, stream)
        if declared is not None:
            _check_duration(declared, limits)
        # Same layout and rate, planar float: one row per channel.
        to_float = av.AudioResampler(format="fltp")
        parts: list[np.ndarray] = []
        total = 0
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            for frame in frames:
                rate = rate or frame.sample_rate
                channels = channels or len(frame.layout.channels)
                for planar in to_float.resample(frame):
                    parts.append(planar.to_ndarray().mean(axis=0, dtype=np.float32))
                    total += parts[-1].size
            if rate and total > limits.max_audio_seconds * rate:
                _check_duration(total / rate, limits)
        for planar in to_float.resample(None):
            parts.append(planar.to_ndarray().mean(axis=0, dtype=np.float32))
    if not rate:
        raise MediaError("corrupt", "audio stream has no sample rate")
    mono = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return mono, rate, channels


def _declared_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    if stream.duration and stream.duration > 0 and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    return None
