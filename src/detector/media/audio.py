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
_LOWPASS_FILTER_WIDTH, _ROLLOFF = 6, 0.99          # torchaudio.functional.resample's defaults
_CHUNK_SECONDS = 20.0                              # source audio resampled per step


def decode_audio(source: Path | bytes, audio_format: str, limits: Limits) -> AudioMedia:
    """Decode to mono (mean over channels) at AUDIO_RATE. WAV/FLAC/OGG through libsndfile, the rest through PyAV.
    Blocks are downmixed and resampled as they are decoded: a long file never exists whole at its own rate."""
    decoded = None
    if audio_format in _SOUNDFILE_FORMATS:
        decoded = _read_with_soundfile(source, limits)
    if decoded is None:
        try:
            decoded = _read_with_pyav(source, limits)
        except av.FFmpegError as exc:
            raise container_error(exc, f"{audio_format.upper()} audio") from exc
    stream, channels = decoded
    if stream.source_frames == 0:
        raise MediaError("empty", "no audio samples")
    duration = stream.source_frames / stream.rate
    _check_duration(duration, limits)
    samples = stream.finish()
    return AudioMedia(
        samples=np.clip(samples, -1.0, 1.0, out=samples),          # in place: hours of audio are hundreds of MB
        duration=duration,
        original_sample_rate=stream.rate,
        channels=channels,
        format=audio_format,
    )


def finite_samples(samples: np.ndarray) -> np.ndarray:
    """`samples` as they are when all are finite (one summing pass, no copy: hours of audio are hundreds of MB),
    else a copy with NaN -> 0 and +-inf -> +-1."""
    if np.isfinite(samples.sum(dtype=np.float64)):
        return samples
    return np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)


class ModelRateStream:
    """Mono float32 blocks at `rate` in (`push`), all of it at AUDIO_RATE out (`finish`).

    torchaudio's band-limited resampler runs on one chunk at a time, each with enough neighbouring samples that its
    outputs equal those of resampling the whole signal at once (the filter reaches `width` samples either side), so
    memory holds the output and about one chunk, whatever the length. Odd rates are first linearly interpolated to a
    near multiple of _RATE_STEP, also as the blocks come.
    """

    def __init__(self, rate: int, expected_frames: int = 0, chunk_seconds: float = _CHUNK_SECONDS):
        self.rate, self.source_frames = rate, 0
        reduced = rate // math.gcd(rate, AUDIO_RATE)
        self.step_rate = round(rate / _RATE_STEP) * _RATE_STEP if reduced > _MAX_REDUCED_RATE else rate
        gcd = math.gcd(self.step_rate, AUDIO_RATE)
        self.orig, self.new = self.step_rate // gcd, AUDIO_RATE // gcd
        width = math.ceil(_LOWPASS_FILTER_WIDTH * self.orig / (min(self.orig, self.new) * _ROLLOFF))
        self.context = (math.ceil(width / self.orig) + 1) * self.orig
        self.chunk = max(1, round(chunk_seconds * self.step_rate / self.orig)) * self.orig
        # Step-rate samples not yet resampled: `pending` from global index `pending_start`, then `blocks`.
        self.pending, self.pending_start, self.blocks, self.blocks_size = np.zeros(0, np.float32), 0, [], 0
        self.next_start = 0                         # where the next chunk's outputs begin (a multiple of orig)
        self.raw_tail, self.raw_start, self.next_position = np.zeros(0, np.float32), 0, 0   # the interpolation
        self.out = np.empty(math.ceil(expected_frames * AUDIO_RATE / rate) + 1, np.float32)
        self.filled = 0

    def push(self, block: np.ndarray) -> None:
        block = finite_samples(np.asarray(block, dtype=np.float32))
        self.source_frames += block.size
        self._take(self._interpolate(block, final=False) if self.step_rate != self.rate else block)

    def finish(self) -> np.ndarray:
        """Every output sample; the stream takes no more blocks."""
        if self.step_rate != self.rate:
            self._take(self._interpolate(np.zeros(0, np.float32), final=True))
        if self.step_rate != AUDIO_RATE:
            self._gather()
            total = self.pending_start + self.pending.size
            if total > self.next_start:
                self._resample_chunk(total)
        samples = self.out[:self.filled]
        return samples.copy() if self.out.size > 1.25 * samples.size + 1024 else samples

    def _take(self, block: np.ndarray) -> None:
        """Step-rate samples: straight out when that is already AUDIO_RATE, else resampled chunk by chunk."""
        if self.step_rate == AUDIO_RATE:
            self._append(block)
            return
        self.blocks.append(block)
        self.blocks_size += block.size
        if self.next_start + self.chunk + self.context <= self.pending_start + self.pending.size + self.blocks_size:
            self._gather()
            while self.next_start + self.chunk + self.context <= self.pending_start + self.pending.size:
                self._resample_chunk(self.next_start + self.chunk)

    def _gather(self) -> None:
        self.pending = np.concatenate([self.pending, *self.blocks])
        self.blocks, self.blocks_size = [], 0

    def _resample_chunk(self, stop: int) -> None:
        """Outputs for step-rate samples [next_start, stop), from the pending samples around them."""
        import torch                   # here, not at the top: `detector --help` and the gateway need no torch
        import torchaudio.functional

        first = max(0, self.next_start - self.context)
        window = self.pending[first - self.pending_start: stop + self.context - self.pending_start]
        resampled = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(window)),
                                                   self.step_rate, AUDIO_RATE).numpy()
        begin = (self.next_start - first) // self.orig * self.new
        self._append(resampled[begin: begin + math.ceil((stop - self.next_start) * self.new / self.orig)])
        self.next_start = stop
        keep_from = max(0, stop - self.context)
        self.pending = self.pending[keep_from - self.pending_start:]
        self.pending_start = keep_from

    def _interpolate(self, block: np.ndarray, final: bool) -> np.ndarray:
        """To step_rate: the values np.interp gives at positions k * rate / step_rate over the whole signal, for
        the positions this block completes (all that remain when `final`, held at the last sample beyond it)."""
        raw = np.concatenate([self.raw_tail, block])
        if raw.size == 0:
            return raw
        ratio = self.rate / self.step_rate
        last = self.raw_start + raw.size - 1
        if final:
            end = max(1, round(self.source_frames * self.step_rate / self.rate))
        else:                           # one sample of margin: a position must lie strictly inside what is here
            end = max(self.next_position, math.floor((last - 1) / ratio) + 1) if last >= 1 else self.next_position
        positions = np.arange(self.next_position, end) * ratio - self.raw_start
        samples = np.interp(positions, np.arange(raw.size), raw).astype(np.float32)
        self.next_position = end
        keep_from = min(max(0, math.floor(end * ratio) - self.raw_start), raw.size - 1)
        self.raw_tail, self.raw_start = raw[keep_from:], self.raw_start + keep_from
        return samples

    def _append(self, samples: np.ndarray) -> None:
        if self.filled + samples.size > self.out.size:
            grown = np.empty(max(self.filled + samples.size, int(self.out.size * 1.5)), np.float32)
            grown[:self.filled] = self.out[:self.filled]
            self.out = grown
        self.out[self.filled:self.filled + samples.size] = samples
        self.filled += samples.size


def _check_duration(seconds: float, limits: Limits) -> None:
    if seconds > limits.max_audio_seconds:
        raise MediaError("too_large",
                         f"audio lasts {seconds:,.1f} s, over the limit of {limits.max_audio_seconds:,.1f} s")


def _read_with_soundfile(source: Path | bytes, limits: Limits) -> tuple[ModelRateStream, int] | None:
    """(stream, channels), or None when libsndfile cannot read it (PyAV then tries)."""
    handle = str(source) if isinstance(source, Path) else io.BytesIO(source)
    try:
        with soundfile.SoundFile(handle) as sound:
            if sound.samplerate <= 0:
                return None
            _check_duration(sound.frames / sound.samplerate, limits)
            stream = ModelRateStream(sound.samplerate, expected_frames=max(sound.frames, 0))
            for block in sound.blocks(blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
                stream.push(block.mean(axis=1))
            return stream, sound.channels
    except (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError):
        return None


def _read_with_pyav(source: Path | bytes, limits: Limits) -> tuple[ModelRateStream, int]:
    """Decode the first audio stream packet by packet, downmixing as it goes; damaged packets are skipped."""
    with open_container(source) as container:
        if not container.streams.audio:
            raise MediaError("corrupt", "the container holds no audio stream")
        audio = container.streams.audio[0]
        rate = audio.codec_context.sample_rate
        channels = audio.codec_context.channels
        declared = _declared_seconds(container, audio)
        if declared is not None:
            _check_duration(declared, limits)
        # Same layout and rate, planar float: one row per channel.
        to_float = av.AudioResampler(format="fltp")
        stream: ModelRateStream | None = None
        for packet in container.demux(audio):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            for frame in frames:
                rate = rate or frame.sample_rate
                channels = channels or len(frame.layout.channels)
                stream = stream or ModelRateStream(rate, expected_frames=round((declared or 0) * rate))
                for planar in to_float.resample(frame):
                    stream.push(planar.to_ndarray().mean(axis=0, dtype=np.float32))
            if stream is not None and stream.source_frames > limits.max_audio_seconds * rate:
                _check_duration(stream.source_frames / rate, limits)
        if stream is not None:
            for planar in to_float.resample(None):
                stream.push(planar.to_ndarray().mean(axis=0, dtype=np.float32))
    if not rate:
        raise MediaError("corrupt", "audio stream has no sample rate")
    return stream or ModelRateStream(rate), channels


def _declared_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    if stream.duration and stream.duration > 0 and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    return None
