"""synthetic-voice on real files: held-out dev speech, shortcut checks, speech presence, bad input through the scan."""

from __future__ import annotations

import io
import json

import av
import numpy as np
import pytest
import soundfile
import torch
import torchaudio.functional
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from detector.config import PROJECT_ROOT, Limits, ScanConfig
from detector.detectors.voice.model import MAX_WINDOWS, SyntheticVoiceDetector
from detector.engine.bundle import ModelBundle
from detector.engine.interface import Finding, NotApplicable
from detector.media import AudioMedia
from detector.metrics import auc
from detector.scan import Scanner
from conftest import tone, write_audio_av, write_video
from training.voice_data import augment, band_limit, codec_round_trip, load_audio, read_dev_speech, split_of

MODELS = PROJECT_ROOT / "models"
RATE = 16000


@pytest.fixture(scope="module")
def detector() -> SyntheticVoiceDetector:
    bundle = ModelBundle.load("synthetic-voice", MODELS / "synthetic-voice")
    det = SyntheticVoiceDetector(bundle, torch.device("cpu"))
    det.network.eval()
    return det


def run(detector: SyntheticVoiceDetector, samples: np.ndarray) -> Finding | NotApplicable:
    media = AudioMedia(samples=samples.astype(np.float32), duration=samples.size / RATE, original_sample_rate=RATE,
                       channels=1, format="wav")
    prepared = detector.preprocess(media)
    if isinstance(prepared, NotApplicable):
        return prepared
    with torch.inference_mode():
        outputs = detector.forward(torch.stack(prepared.units))
    return detector.summarize(prepared, list(outputs), explain=True)


@pytest.fixture(scope="module")
def held_out(dev_data):
    """Dev speech never used for training, validation or calibration: waveforms and labels."""
    clips = [c for c in read_dev_speech(dev_data) if split_of(c) == "test"]
    return [(clip, load_audio(clip.path)) for clip in clips]


@pytest.fixture(scope="module")
def held_out_scores(detector, held_out):
    return np.array([run(detector, wave).score for _, wave in held_out])


def _shortcut_features(wave: np.ndarray) -> list[float]:
    """Duration, RMS level and 99% spectral roll-off (bandwidth)."""
    spectrum = np.abs(np.fft.rfft(wave[: 30 * RATE])) ** 2
    cumulative = np.cumsum(spectrum) / (spectrum.sum() + 1e-20)
    bandwidth = float(np.fft.rfftfreq(min(wave.size, 30 * RATE), 1 / RATE)[np.searchsorted(cumulative, 0.99)])
    return [wave.size / RATE, 20 * np.log10(np.sqrt(np.mean(wave ** 2)) + 1e-9), bandwidth]


def test_held_out_dev_sources_above_chance_with_few_false_alarms(detector, held_out, held_out_scores):
    """Weak bar, matching the shipped model (see its card; v2: AUC 0.746, 0.960 without the VITS demo, whose real
    LJSpeech / VCTK recordings it scores as high as their VITS output; no real file flagged): above chance on held-out
    dev sources, the voice clones and the sources other than the VITS demo separated, and real speech rarely called
    synthetic at the shipped threshold."""
    labels = np.array([clip.label for clip, _ in held_out])
    assert labels.min() == 0 and labels.max() == 1
    assert auc(labels, held_out_scores) > 0.7
    clones = np.array([clip.source == "trump-clone" for clip, _ in held_out])
    assert auc(labels[clones], held_out_scores[clones]) > 0.9
    not_vits = np.array([clip.source != "vits-demo" for clip, _ in held_out])
    assert auc(labels[not_vits], held_out_scores[not_vits]) > 0.9
    flagged = held_out_scores >= detector.calibration.synthetic_threshold
    assert flagged[labels == 0].mean() <= 0.05


@pytest.fixture(scope="module")
def channel_randomized(held_out):
    """Each held-out file as a random 3-6 s excerpt through one random training channel (loudness, band-limit,
    codec, noise, reverb, silence): the conditions the model was trained under."""
    out = []
    for i, (clip, wave) in enumerate(held_out):
        rng = np.random.default_rng(i)
        length = int(rng.uniform(3, 6) * RATE)
        start = int(rng.integers(0, max(1, wave.size - length)))
        out.append((clip, augment(wave[start:start + length], rng)))
    return out


def _shortcut_auc(files) -> float:
    """Cross-validated AUC of a logistic regression on duration, RMS and bandwidth."""
    labels = np.array([clip.label for clip, _ in files])
    features = np.array([_shortcut_features(wave) for _, wave in files])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    return auc(labels, cross_val_predict(model, features, labels, cv=folds, method="predict_proba")[:, 1])


def test_duration_rms_bandwidth_alone_do_not_separate(detector, channel_randomized):
    """Once channels are randomized as in training, the three shortcut features carry little class information,
    while the detector still separates the same files better: its evidence is not duration, level or bandwidth.
    Measured: shortcut 0.584; v1 0.748; v2 0.659 (0.894 without the VITS demo, which is 126 of the 155 files)."""
    labels = np.array([clip.label for clip, _ in channel_randomized])
    scores = np.array([_score_or_nan(detector, wave) for _, wave in channel_randomized])
    scored = ~np.isnan(scores)
    shortcut = _shortcut_auc(channel_randomized)
    assert shortcut < 0.75
    assert auc(labels[scored], scores[scored]) > shortcut + 0.05
    not_vits = np.array([clip.source != "vits-demo" for clip, _ in channel_randomized])
    assert auc(labels[scored & not_vits], scores[scored & not_vits]) > 0.8


def _score_or_nan(detector, wave: np.ndarray) -> float:
    outcome = run(detector, wave)
    return outcome.score if isinstance(outcome, Finding) else float("nan")


def test_score_is_stable_under_loudness_and_codec(detector, held_out):
    picks = list(range(0, len(held_out), max(1, len(held_out) // 12)))[:12]
    changes = {"quieter": [], "mp3": []}
    for i in picks:
        wave = held_out[i][1][: 8 * RATE]
        base = run(detector, wave).score
        changes["quieter"].append(abs(run(detector, wave * 0.1).score - base))
        changes["mp3"].append(abs(run(detector, codec_round_trip(wave, "mp3", "libmp3lame", 64_000)).score - base))
    assert np.mean(changes["quieter"]) < 0.1       # features are gain invariant; the speech check's floor is not
    assert np.mean(changes["mp3"]) < 0.1


def test_telephone_band_real_speech_is_not_flagged_and_files_stay_ranked(detector, held_out, held_out_scores):
    """Every held-out file band-limited to 0-4 kHz (8 kHz sampling). The model reads 0-8 kHz, so the band moves its
    scores (v2: real speech up by a median 0.12, synthetic unchanged; AUC 0.746 -> 0.635; v1, which read 0-4 kHz
    only: 0.720 -> 0.718; model card): no more real files may cross the threshold than clean, and the band-limited
    files must stay ranked above chance."""
    labels = np.array([clip.label for clip, _ in held_out])
    telephone = np.array([run(detector, band_limit(wave, 8000)).score for _, wave in held_out])
    threshold = detector.calibration.synthetic_threshold
    assert (telephone[labels == 0] >= threshold).mean() <= (held_out_scores[labels == 0] >= threshold).mean() + 0.02
    assert auc(labels, telephone) > 0.6


def test_evidence_lists_windows_and_is_json(detector, held_out):
    wave = np.concatenate([w for _, w in held_out[:6]])[: 20 * RATE]
    finding = run(detector, wave)
    assert isinstance(finding, Finding) and 0.0 <= finding.score <= 1.0
    evidence = json.loads(json.dumps(finding.evidence))
    assert evidence["windows_scored"] == len(evidence["windows"]) >= 8
    for segment in evidence["suspicious_segments"]:
        assert 0 <= segment["start"] < segment["end"] <= 20.0


def test_non_finite_samples_score_as_their_cleaned_signal(detector, held_out):
    """Samples that reach the detector without the decoder (training, library callers) may hold NaN or inf: they
    score as the signal with NaN -> 0 and inf -> +-1, and the caller's array is left as it was."""
    wave = np.concatenate([w for _, w in held_out[:3]])[: 8 * RATE].astype(np.float32)
    broken = wave.copy()
    broken[[100, 5000, 40000]] = [np.nan, np.inf, -np.inf]
    cleaned = np.nan_to_num(broken, nan=0.0, posinf=1.0, neginf=-1.0)
    assert run(detector, broken).score == pytest.approx(run(detector, cleaned).score)
    detector.preprocess(AudioMedia(samples=broken, duration=8.0, original_sample_rate=RATE, channels=1, format="wav"))
    assert np.isnan(broken[100]) and np.isposinf(broken[5000]) and np.isneginf(broken[40000])


@pytest.mark.parametrize("name", ["silence", "chord", "hum", "white-noise"])
def test_no_speech_is_not_applicable(detector, name):
    t = np.arange(5 * RATE) / RATE
    signals = {"silence": np.zeros_like(t),
               "chord": 0.2 * sum(np.sin(2 * np.pi * f * t) for f in (220, 277, 330)),
               "hum": 0.3 * np.sin(2 * np.pi * 50 * t),
               "white-noise": 0.05 * np.random.default_rng(0).standard_normal(t.size)}
    outcome = run(detector, signals[name])
    assert isinstance(outcome, NotApplicable)
    assert "no speech" in outcome.reason


def test_long_audio_scores_evenly_spaced_windows(detector, held_out):
    speech = np.concatenate([w for _, w in held_out[:10]])
    long_wave = np.tile(speech, int(np.ceil(15 * 60 * RATE / speech.size)))[: 15 * 60 * RATE]
    finding = run(detector, long_wave)
    assert isinstance(finding, Finding)
    assert finding.evidence["windows_scored"] == MAX_WINDOWS < finding.evidence["windows_with_speech"]
    assert "long audio" in finding.reason
    starts = [w["start"] for w in finding.evidence["windows"]]
    assert starts[0] < 60 and starts[-1] > 14 * 60


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, held_out):
    root = tmp_path_factory.mktemp("voice-bad")
    speech = held_out[0][1][: 6 * RATE]
    files = {}

    def wav(name, samples, rate, **kw):
        soundfile.write(root / name, samples, rate, **kw)
        files[name] = root / name

    wav("zero.wav", np.zeros((0, 1), np.float32), RATE, subtype="PCM_16")
    wav("one-sample.wav", np.array([0.1], np.float32), RATE, subtype="PCM_16")
    wav("short-speech.wav", speech[: int(0.7 * RATE)], RATE, subtype="PCM_16")   # under the 1 s level trend
    wav("clipped.wav", np.clip(speech * 4 / np.abs(speech).max(), -1, 1), RATE, subtype="PCM_16")
    wav("8bit.wav", speech, RATE, subtype="PCM_U8")
    wav("96k.wav", load_resampled(speech, 96000), 96000, subtype="PCM_24")
    wav("6ch.wav", np.repeat(speech[:, None], 6, axis=1) * np.linspace(0.2, 1, 6), RATE, subtype="FLOAT")
    mp3 = root / "speech.mp3"
    mp3_bytes = _mp3_bytes(speech)
    mp3.write_bytes(mp3_bytes)
    files["speech.mp3"] = mp3
    (root / "corrupt.mp3").write_bytes(mp3_bytes[:400] + bytes(np.random.default_rng(0).integers(0, 256, 3000,
                                                                                                  dtype=np.uint8)))
    files["corrupt.mp3"] = root / "corrupt.mp3"
    (root / "garbage.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 20)
    files["garbage.mp3"] = root / "garbage.mp3"
    wav("three-minutes.wav", np.tile(speech, 30), RATE, subtype="PCM_16")
    return files


def load_resampled(wave: np.ndarray, rate: int) -> np.ndarray:
    return torchaudio.functional.resample(torch.from_numpy(wave), RATE, rate).numpy()


def _mp3_bytes(wave: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=RATE, layout="mono")
        for start in range(0, wave.size, 1152):
            frame = av.AudioFrame.from_ndarray(wave[None, start:start + 1152].astype(np.float32), format="flt",
                                               layout="mono")
            frame.sample_rate, frame.pts = RATE, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def test_bad_inputs_through_the_scan_never_crash_the_batch(bad_inputs):
    limits = Limits(max_audio_seconds=120.0)                   # the 3-minute file is over it: refused, clearly
    scanner = Scanner(ScanConfig(limits=limits, models_dir=MODELS))
    results = {r.path.rsplit("/", 1)[-1]: r for r in scanner.scan(list(bad_inputs.values()))}
    assert set(results) == set(bad_inputs)
    for name in ("clipped.wav", "8bit.wav", "96k.wav", "6ch.wav", "speech.mp3"):
        assert results[name].verdict in ("synthetic", "authentic", "uncertain"), (name, results[name])
        assert results[name].model["name"] == "synthetic-voice"
    for name in ("zero.wav", "one-sample.wav"):
        assert results[name].verdict in ("error", "not_applicable") and results[name].reason, results[name]
    assert results["short-speech.wav"].verdict in ("synthetic", "authentic", "uncertain", "not_applicable")
    assert results["garbage.mp3"].verdict in ("error", "not_applicable") and results["garbage.mp3"].reason
    assert results["corrupt.mp3"].verdict != "error" or results["corrupt.mp3"].error_code != "internal"
    assert results["three-minutes.wav"].verdict == "error" and "limit" in results["three-minutes.wav"].reason
    assert all(r.error_code != "internal" for r in results.values())


def test_a_videos_soundtrack_is_scored_as_its_audio_would_be(tmp_path, held_out):
    speech = held_out[0][1][: 8 * RATE]
    video = write_video(tmp_path / "talk.mp4", "libx264", "mp4", frames=16, fps=2, audio=speech[:, None])
    audio = write_audio_av(tmp_path / "talk.m4a", "aac", "mp4", speech[:, None], RATE)
    silent = write_video(tmp_path / "silent.mp4", "libx264", "mp4", frames=16, fps=2)
    hum = write_video(tmp_path / "hum.mp4", "libx264", "mp4", frames=16, fps=2, audio=tone(8, RATE, frequency=50))
    scanner = Scanner(ScanConfig(models_dir=MODELS))
    talk, alone, no_audio, humming = scanner.scan([video, audio, silent, hum])
    assert talk.modality == "video" and talk.verdict == "not_applicable" and talk.reason == "no face found"
    soundtrack = talk.evidence["soundtrack"]
    assert soundtrack["model"] == alone.model and soundtrack["verdict"] == alone.verdict
    assert soundtrack["score"] == pytest.approx(alone.score, abs=1e-4)
    assert soundtrack["evidence"]["windows_scored"] == alone.evidence["windows_scored"] >= 2
    assert no_audio.evidence["soundtrack"] == {"verdict": "not_applicable", "reason": "the video has no audio stream"}
    assert humming.evidence["soundtrack"]["verdict"] == "not_applicable"
    assert "no speech" in humming.evidence["soundtrack"]["reason"]
    json.dumps(talk.to_dict())

    too_long, = Scanner(ScanConfig(limits=Limits(max_audio_seconds=4.0), models_dir=MODELS)).scan([video])
    assert too_long.verdict == "not_applicable" and too_long.evidence["soundtrack"]["verdict"] == "error"
    assert "over the limit" in too_long.evidence["soundtrack"]["reason"]
