"""Audio: every supported format and sample layout to mono float32 at 16 kHz with the same sound."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile
import torch
import torchaudio.functional

from detector.config import Limits
from detector.media import AUDIO_RATE, AudioMedia, MediaError, MediaInput, decode
from detector.media.audio import ModelRateStream, decode_audio

from conftest import tone

# name: (original rate, channels)
TONES = {
    "wav_8bit": (16000, 1), "wav_24bit_stereo": (44100, 2), "wav_96k": (96000, 1), "wav_6ch": (48000, 6),
    "flac": (22050, 1), "ogg_vorbis": (32000, 1), "mp3": (44100, 2), "m4a": (16000, 1), "aac_adts": (24000, 1),
    "opus": (48000, 1), "mp4_audio_only": (16000, 1), "webm_audio_only": (48000, 1),
}


def _decode_audio(source, limits: Limits = Limits()) -> AudioMedia:
    media = decode(source, limits)
    assert isinstance(media, AudioMedia)
    assert media.samples.dtype == np.float32 and media.samples.ndim == 1
    assert media.sample_rate == AUDIO_RATE
    assert np.abs(media.samples).max() <= 1.0
    return media


def _dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum)) * AUDIO_RATE / samples.size


@pytest.mark.parametrize("name", sorted(TONES))
def test_one_second_tone_keeps_pitch_and_level(sample_media, name):
    media = _decode_audio(MediaInput.from_path(sample_media[name]))
    rate, channels = TONES[name]
    assert (media.original_sample_rate, media.channels) == (rate, channels)
    # Lossy encoders add up to a frame of padding.
    assert media.samples.size == pytest.approx(AUDIO_RATE, abs=AUDIO_RATE * 0.08)
    assert media.duration == pytest.approx(1.0, abs=0.08)
    assert _dominant_frequency(media.samples) == pytest.approx(440.0, abs=3.0)
    middle = media.samples[2000:-2000]
    rms = float(np.sqrt(np.mean(middle ** 2)))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.1)     # 8-bit, 24-bit and float all scaled alike


def test_downmix_is_the_mean_of_channels(tmp_path):
    left = tone(0.5, 16000)
    path = tmp_path / "opposite.wav"
    soundfile.write(path, np.hstack([left, -left]), 16000, subtype="FLOAT")
    media = _decode_audio(MediaInput.from_path(path))
    assert media.channels == 2
    assert np.abs(media.samples).max() < 1e-6


def test_out_of_range_and_non_finite_float_samples_are_clipped(tmp_path):
    path = tmp_path / "loud.wav"
    soundfile.write(path, np.array([[2.0], [-3.0], [0.25], [np.nan], [np.inf], [-np.inf]], dtype=np.float32), 16000,
                    subtype="FLOAT")
    media = _decode_audio(MediaInput.from_path(path))
    assert media.samples.tolist() == [1.0, -1.0, 0.25, 0.0, 1.0, -1.0]


def test_odd_sample_rate_keeps_pitch(tmp_path):
    path = tmp_path / "mac.wav"
    soundfile.write(path, tone(1, 22254), 22254, subtype="PCM_16")
    media = _decode_audio(MediaInput.from_path(path))
    assert media.original_sample_rate == 22254
    assert _dominant_frequency(media.samples) == pytest.approx(440.0, abs=3.0)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 22254, 44100, 96000])
@pytest.mark.parametrize("length", [1, 7, 44_101, 150_001])
def test_streamed_resampling_equals_resampling_the_whole_signal(rate, length):
    """Blocks of odd sizes through chunks of 0.2 s (many chunk seams): the same samples as torchaudio on the whole
    signal (after the linear step an odd rate such as 22254 Hz takes to 22250 Hz first)."""
    rng = np.random.default_rng(length)
    signal = (rng.standard_normal(length) * 0.3).astype(np.float32)
    stream = ModelRateStream(rate, chunk_seconds=0.2)
    start = 0
    while start < length:
        size = int(rng.integers(1, 3000))
        stream.push(signal[start:start + size])
        start += size
    streamed = stream.finish()
    whole, whole_rate = signal, rate
    if rate == 22254:
        whole_rate = 22250
        positions = np.arange(max(1, round(length * whole_rate / rate))) * (rate / whole_rate)
        whole = np.interp(positions, np.arange(length), signal).astype(np.float32)
    if whole_rate != AUDIO_RATE:
        whole = torchaudio.functional.resample(torch.from_numpy(whole), whole_rate, AUDIO_RATE).numpy()
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


def test_one_sample_and_zero_samples(sample_media):
    assert _decode_audio(MediaInput.from_path(sample_media["wav_one_sample"])).samples.size == 1
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_path(sample_media["wav_zero_length"]), Limits())
    assert (error.value.code, error.value.message) == ("empty", "no audio samples")


@pytest.mark.parametrize("name", ["flac", "mp3", "m4a"])
def test_over_long_audio_is_refused(sample_media, name):
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_path(sample_media[name]), Limits(max_audio_seconds=0.5))
    assert error.value.code == "too_large" and "audio lasts" in error.value.message


def test_bytes_and_path_inputs_agree(sample_media):
    path = sample_media["opus"]
    from_path = _decode_audio(MediaInput.from_path(path))
    from_bytes = _decode_audio(MediaInput.from_bytes(path.read_bytes()))
    assert np.array_equal(from_path.samples, from_bytes.samples)


def test_dev_speech_flac_and_mp3_decode(dev_data):
    with open(dev_data / "labels.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["modality"] == "speech"]
    flac = next(row for row in rows if row["path"].endswith(".flac"))
    mp3 = next(row for row in rows if row["source"] == "trump-clone")
    for row in (flac, mp3):
        media = _decode_audio(MediaInput.from_path(dev_data / row["path"]))
        assert media.duration > 0.5
        assert media.samples.size == pytest.approx(media.duration * AUDIO_RATE, rel=0.01)
        assert media.samples.std() > 1e-3                         # speech, not silence


def test_declared_length_is_refused_before_decoding(sample_media, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("samples were decoded although the header is over the limit")
    monkeypatch.setattr(soundfile.SoundFile, "blocks", no_decoding)
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_path(sample_media["wav_96k"]), Limits(max_audio_seconds=0.5))
    assert error.value.code == "too_large"


def test_audio_track_of_a_video_file(sample_media):
    media = decode_audio(sample_media["mp4_mpeg4_with_audio"], "mp4", Limits())
    assert media.duration == pytest.approx(2.0, abs=0.1)
    assert _dominant_frequency(media.samples) == pytest.approx(440.0, abs=3.0)
