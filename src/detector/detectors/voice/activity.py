"""Speech presence from energy and spectral cues, cheap enough for multi-hour audio.

Per 20 ms frame: level in the speech band (250-4000 Hz) and how much of the frame's energy lies in that band. A frame
is *active* when its speech-band level clears both an absolute floor and the recording's own noise floor. Speech is
*present* when there is enough active time AND the speech-band envelope moves at syllable rate (speech switches
between syllables and short pauses, so its level swings by many dB over a fraction of a second; steady music, tones,
hum and noise do not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = 16_000
FRAME = 320                       # 20 ms, no overlap
MIN_LEVEL_DB = -60.0              # absolute floor (dBFS) for an active frame
ABOVE_FLOOR_DB = 12.0             # and this much above the recording's own noise floor
MIN_SPEECH_SECONDS = 0.5
MIN_MODULATION_DB = 3.0           # syllable-rate swing of the speech-band level (std of the detrended envelope)
MIN_BAND_SHARE = 0.15             # share of frame energy in 250-4000 Hz, averaged over active frames


@dataclass
class SpeechActivity:
    active: np.ndarray            # bool per FRAME samples
    speech_seconds: float
    modulation_db: float
    band_share: float
    present: bool
    reason: str                   # why speech was judged absent ("" when present)

    def active_fraction(self, start: int, stop: int) -> float:
        """Share of active frames between two sample offsets."""
        frames = self.active[start // FRAME: max(start // FRAME + 1, stop // FRAME)]
        return float(frames.mean()) if frames.size else 0.0

    def active_span(self) -> tuple[int, int]:
        """First and last active sample (the whole signal when nothing is active)."""
        idx = np.flatnonzero(self.active)
        if idx.size == 0:
            return 0, self.active.size * FRAME
        return int(idx[0] * FRAME), int((idx[-1] + 1) * FRAME)


def _frame_levels(samples: np.ndarray, chunk_frames: int = 6_000) -> tuple[np.ndarray, np.ndarray]:
    """Speech-band level (dBFS) and speech-band energy share per frame, computed chunk by chunk (bounded memory)."""
    n_frames = samples.size // FRAME
    freqs = np.fft.rfftfreq(FRAME, 1 / RATE)
    band = (freqs >= 250) & (freqs <= 4000)
    window = np.hanning(FRAME).astype(np.float32)
    scale = float(np.sum(window ** 2)) * FRAME / 2
    levels = np.empty(n_frames, np.float32)
    shares = np.empty(n_frames, np.float32)
    for start in range(0, n_frames, chunk_frames):
        stop = min(n_frames, start + chunk_frames)
        frames = samples[start * FRAME: stop * FRAME].reshape(-1, FRAME) * window
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        band_power = power[:, band].sum(axis=1)
        levels[start:stop] = 10 * np.log10(band_power / scale + 1e-12)
        shares[start:stop] = band_power / (power.sum(axis=1) + 1e-20)
    return levels, shares


def detect_speech(samples: np.ndarray) -> SpeechActivity:
    """Speech presence for mono float32 samples at 16 kHz."""
    samples = np.asarray(samples, dtype=np.float32)
    levels, shares = _frame_levels(samples)
    if levels.size == 0:
        return SpeechActivity(np.zeros(0, bool), 0.0, 0.0, 0.0, False,
                              "no speech: audio shorter than one 20 ms frame")
    noise_floor = float(np.percentile(levels, 10))
    active = (levels > MIN_LEVEL_DB) & (levels > noise_floor + ABOVE_FLOOR_DB)
    speech_seconds = float(active.sum() * FRAME / RATE)
    # syllable-rate swing: the level envelope minus its 1 s moving average, clipped at the floor so that digital
    # silence between words does not count as infinitely deep modulation
    envelope = np.maximum(levels, max(noise_floor, MIN_LEVEL_DB))
    width = min(50, envelope.size)                      # 'same' returns the kernel's length when the kernel is longer
    trend = np.convolve(envelope, np.ones(width) / width, mode="same")
    modulation_db = float(np.std((envelope - trend)[active])) if active.any() else 0.0
    band_share = float(shares[active].mean()) if active.any() else 0.0
    reason = ""
    if not (levels > MIN_LEVEL_DB).any():
        reason = f"no speech: silence (speech-band level never above {MIN_LEVEL_DB:.0f} dBFS)"
    elif speech_seconds < MIN_SPEECH_SECONDS:
        reason = (f"no speech: {speech_seconds:.2f} s of sound rises above the recording's steady level in the "
                  f"speech band (need {MIN_SPEECH_SECONDS} s); a steady tone, hum, noise or music only")
    elif band_share < MIN_BAND_SHARE:
        reason = f"no speech: only {band_share:.0%} of the sound lies in the 250-4000 Hz speech band"
    elif modulation_db < MIN_MODULATION_DB:
        reason = (f"no speech: the sound is steady (level swings {modulation_db:.1f} dB at syllable rate, speech "
                  f"swings more than {MIN_MODULATION_DB} dB); music, tone or noise only")
    return SpeechActivity(active, speech_seconds, modulation_db, band_share, not reason, reason)
