"""Shared fixtures: the labelled dev data, and small real media files generated once per test session."""

from __future__ import annotations

import io
import tarfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from PIL import Image

from detector.config import PROJECT_ROOT

DEV_DATA = PROJECT_ROOT.parent / "shared" / "data" / "dev"


@pytest.fixture(scope="session")
def dev_data() -> Path:
    """Root of the labelled dev data (labels.csv beside face/, speech/, text/); skips when absent."""
    if not (DEV_DATA / "labels.csv").is_file():
        pytest.skip(f"dev data not found at {DEV_DATA}")
    return DEV_DATA


# ---- generators: real encoders, tiny inputs -------------------------------------------------------------------

def index_frame(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    """A frame that carries its index: left half grey level 16 * (index // 16) + 8, right half 16 * (index % 16) + 8.

    Levels 16 apart survive lossy coding of flat, macroblock-aligned areas; read back with frame_index.
    """
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:, : width // 2] = 16 * (index // 16 % 16) + 8
    frame[:, width // 2:] = 16 * (index % 16) + 8
    return frame


def frame_index(frame: np.ndarray) -> int:
    """The index written by index_frame into a (decoded) frame."""
    half = frame.shape[1] // 2
    high = round((float(frame[:, :half].mean()) - 8) / 16)
    low = round((float(frame[:, half:].mean()) - 8) / 16)
    return 16 * high + low


def write_video(path: Path, codec: str, container_format: str | None = None, frames: int = 20, fps: int = 10,
                size: tuple[int, int] = (64, 48), gop: int | None = None, rotation: int | None = None,
                audio: np.ndarray | None = None, target=None, draw=index_frame) -> Path:
    """Encode `frames` frames from `draw(index, width, height)` with PyAV; optionally a rotation and a soundtrack
    (`audio`: 16 kHz mono samples, shape (samples, 1), encoded as AAC)."""
    out = av.open(target if target is not None else str(path), "w", format=container_format)
    with out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        if gop:
            video.codec_context.gop_size = gop
        if rotation is not None:
            video.set_display_rotation(rotation)
        soundtrack = out.add_stream("aac", rate=16000, layout="mono") if audio is not None else None
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(draw(index, *size), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if soundtrack is not None:
            _encode_audio(out, soundtrack, audio, 16000, "mono")
    return path


def left_half_white(index: int, width: int, height: int) -> np.ndarray:
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[:, : width // 2] = 255
    return frame


def tone(seconds: float, rate: int, channels: int = 1, frequency: float = 440.0) -> np.ndarray:
    """A 0.5-amplitude sine, shape (samples, channels)."""
    t = np.arange(int(round(seconds * rate))) / rate
    wave = 0.5 * np.sin(2 * np.pi * frequency * t)
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def write_audio_av(path: Path, codec: str, container_format: str, samples: np.ndarray, rate: int) -> Path:
    """Encode (samples, channels) float audio with a PyAV encoder into the given container."""
    layout = {1: "mono", 2: "stereo"}[samples.shape[1]]
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        _encode_audio(out, stream, samples, rate, layout)
    return path


def _encode_audio(out, stream, samples: np.ndarray, rate: int, layout: str) -> None:
    planar = np.ascontiguousarray(samples.T.astype(np.float32))
    chunk = 1024
    for start in range(0, planar.shape[1], chunk):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar[:, start:start + chunk]), format="fltp",
                                           layout=layout)
        frame.sample_rate = rate
        frame.pts, frame.time_base = start, Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


class _WriteOnly(io.RawIOBase):
    """A sink that cannot seek, so muxers cannot go back to write the duration (an 'unknown duration' stream)."""

    def __init__(self):
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.buffer += bytes(data)
        return len(data)


def _image(path: Path, array: np.ndarray, mode: str | None = None, **save) -> Path:
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    image.save(path, **save)
    return path


def gradient_image(height: int = 40, width: int = 60) -> np.ndarray:
    """Red rises left to right, green top to bottom: any rotation or flip shows."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 128)], axis=2).astype(np.uint8)


@pytest.fixture(scope="session")
def sample_media(tmp_path_factory) -> dict[str, Path]:
    """Small real files of every supported kind, keyed by a descriptive name; names carry no meaning to decoding."""
    root = tmp_path_factory.mktemp("media")
    files: dict[str, Path] = {}
    gradient = gradient_image()

    # Images. EXIF orientation 6: the stored 60x40 picture is shown rotated 90 degrees clockwise (40x60).
    exif = Image.Exif()
    exif[0x0112] = 6
    files["jpeg_exif_rotated"] = _image(root / "rotated.jpg", gradient, format="JPEG", exif=exif.tobytes())
    rgba = np.dstack([gradient, np.where(np.arange(60)[None, :] < 30, 0, 255).repeat(40, 0)]).astype(np.uint8)
    files["png_rgba"] = _image(root / "rgba.png", rgba, format="PNG")
    files["jpeg_cmyk"] = _image(root / "cmyk.jpg", gradient, "CMYK", format="JPEG")
    files["png_grey"] = _image(root / "grey.png", gradient, "L", format="PNG")
    files["png_grey16"] = root / "grey16.png"
    Image.fromarray((np.arange(40 * 60, dtype=np.uint16).reshape(40, 60) * 27)).save(files["png_grey16"])
    files["png_palette"] = root / "palette.png"
    Image.fromarray(gradient).quantize(256).save(files["png_palette"])
    files["gif"] = root / "anim.gif"
    first, second = Image.fromarray(gradient), Image.fromarray(255 - gradient)
    first.save(files["gif"], save_all=True, append_images=[second], duration=100)
    files["bmp"] = _image(root / "image.bmp", gradient, format="BMP")
    files["webp"] = _image(root / "image.webp", gradient, format="WEBP", lossless=True)
    files["png"] = _image(root / "plain.png", gradient, format="PNG")
    files["jpeg"] = _image(root / "plain.jpg", gradient, format="JPEG", quality=95)

    # Video: 20 frames at 10 fps = 2 s unless stated.
    files["mp4_h264"] = write_video(root / "h264.mp4", "libx264", "mp4")
    files["mp4_mpeg4_with_audio"] = write_video(root / "mpeg4.mp4", "mpeg4", "mp4", audio=tone(2, 16000))
    files["mov"] = write_video(root / "clip.mov", "libx264", "mov")
    files["mkv"] = write_video(root / "clip.mkv", "libx264", "matroska")
    files["webm"] = write_video(root / "clip.webm", "libvpx", "webm")
    files["avi"] = write_video(root / "clip.avi", "mpeg4", "avi")
    files["mpeg_ts"] = write_video(root / "clip.ts", "libx264", "mpegts", audio=tone(2, 16000))
    ts = files["mpeg_ts"].read_bytes()               # M2TS (AVCHD, Blu-ray): a 4-byte timecode before each packet
    files["m2ts"] = root / "clip.m2ts"
    files["m2ts"].write_bytes(b"".join(b"\x00\x00\x00\x00" + ts[i:i + 188] for i in range(0, len(ts), 188)))
    files["mpeg_ps"] = write_video(root / "clip.mpg", "mpeg2video", "mpeg")
    files["mp4_long_gop10"] = write_video(root / "long.mp4", "libx264", "mp4", frames=100, gop=10)
    files["mp4_rotated"] = write_video(root / "rotated.mp4", "libx264", "mp4", size=(64, 32), rotation=90,
                                       draw=left_half_white)
    sink = _WriteOnly()
    write_video(root / "unused", "libx264", "matroska", target=sink)
    files["mkv_no_duration"] = root / "streamed.mkv"
    files["mkv_no_duration"].write_bytes(bytes(sink.buffer))

    # Audio: 1 s tones unless stated.
    soundfile.write(root / "u8.wav", tone(1, 16000), 16000, subtype="PCM_U8")
    files["wav_8bit"] = root / "u8.wav"
    soundfile.write(root / "s24.wav", tone(1, 44100, 2), 44100, subtype="PCM_24")
    files["wav_24bit_stereo"] = root / "s24.wav"
    soundfile.write(root / "hi.wav", tone(1, 96000), 96000, subtype="PCM_16")
    files["wav_96k"] = root / "hi.wav"
    soundfile.write(root / "six.wav", tone(1, 48000, 6), 48000, subtype="FLOAT")
    files["wav_6ch"] = root / "six.wav"
    soundfile.write(root / "one.wav", tone(1 / 16000, 16000), 16000, subtype="PCM_16")
    files["wav_one_sample"] = root / "one.wav"
    soundfile.write(root / "zero.wav", np.zeros((0, 1), np.float32), 16000, subtype="PCM_16")
    files["wav_zero_length"] = root / "zero.wav"
    soundfile.write(root / "speech.flac", tone(1, 22050), 22050, subtype="PCM_16")
    files["flac"] = root / "speech.flac"
    soundfile.write(root / "vorbis.ogg", tone(1, 32000), 32000, format="OGG", subtype="VORBIS")
    files["ogg_vorbis"] = root / "vorbis.ogg"
    files["mp3"] = write_audio_av(root / "tone.mp3", "libmp3lame", "mp3", tone(1, 44100, 2), 44100)
    files["m4a"] = write_audio_av(root / "tone.m4a", "aac", "ipod", tone(1, 16000), 16000)
    files["mp4_audio_only"] = write_audio_av(root / "audio.mp4", "aac", "mp4", tone(1, 16000), 16000)
    files["aac_adts"] = write_audio_av(root / "tone.aac", "aac", "adts", tone(1, 24000), 24000)
    files["opus"] = write_audio_av(root / "tone.opus", "libopus", "ogg", tone(1, 48000), 48000)
    files["webm_audio_only"] = write_audio_av(root / "voice.webm", "libopus", "webm", tone(1, 48000), 48000)
    files["mpeg_ts_audio_only"] = write_audio_av(root / "radio.ts", "aac", "mpegts", tone(1, 48000), 48000)

    # Text.
    english = "The first paragraph.\n\nThe second   paragraph,\twith  spaces.\r\nAnd a new line.\n"
    chinese = "深度伪造检测。\n\n第二段文字，全角ＡＢＣ１２３。\n"
    (root / "utf8.txt").write_bytes(english.encode("utf-8"))
    files["text_utf8"] = root / "utf8.txt"
    (root / "utf16.txt").write_bytes(chinese.encode("utf-16"))   # with BOM
    files["text_utf16"] = root / "utf16.txt"
    (root / "gb.txt").write_bytes(chinese.encode("gb18030"))
    files["text_gb18030"] = root / "gb.txt"
    return files


def text_pdf(pages: list[str], metadata: dict | None = None, password: str | None = None) -> bytes:
    """A real PDF whose pages carry these lines as a Helvetica text layer (Latin-1 text only)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica")}))
    for text in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        lines = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in text.split("\n")]
        content = DecodedStreamObject()
        content.set_data(("BT /F1 11 Tf 14 TL 72 740 Td " + " ".join(f"({line}) '" for line in lines) + " ET")
                         .encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(content)
    if metadata:
        writer.add_metadata(metadata)
    if password:
        writer.encrypt(user_password=password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def write_sdist(path: Path, top: str, files: dict[str, bytes]) -> Path:
    """A source distribution (tar.gz) holding `files` below its top folder, as PyPI serves them."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path
