"""What an input is, judged from its bytes (magic numbers, then a container probe), never from its file name."""

from __future__ import annotations

import codecs
import re
import struct
import unicodedata
from pathlib import Path

import av

from detector.media.container import open_container
from detector.media.errors import MediaError
from detector.media.types import Sniffed

# How much of a file `decode` reads to sniff it; text sniffing judges this much.
SNIFF_BYTES = 64 * 1024

# Not "printable" to Python, yet ordinary in text: spaces and separators, and format characters such as the
# zero-width joiners in emoji sequences and the direction marks in Arabic or Hebrew.
_INVISIBLE_IN_TEXT = {"Zs", "Zl", "Zp", "Cf"}
_BMP_DIB_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
# MPEG transport stream packets (HLS segments, broadcast, camcorders): 188 bytes each, or 192 in M2TS / AVCHD,
# where a 4-byte timecode precedes each; every packet starts with the sync byte 0x47.
_TS_PACKETS = ((188, 0), (192, 4))
_TS_PACKETS_CHECKED = 8
_AUDIO_ONLY_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",
                b"avif", b"avis"}
# Markup at the start of text (an XML declaration, comments and a doctype may come first): web pages are judged on
# their main text; SVG drawings are images we do not rasterize. A page may open with a short line of text before its
# markup (an explicit AI-generated notice written there: browsers show it first). Without a doctype, a closing tag
# must follow, so prose that merely begins with "<html>" stays prose.
_MARKUP_PREAMBLE = r"(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
_PAGE_LEAD = r"\A[^<]{0,200}?"
_HTML_DOCTYPE = re.compile(_PAGE_LEAD + _MARKUP_PREAMBLE + r"<!doctype\s+html", re.I | re.S)
_HTML_ELEMENT = re.compile(_PAGE_LEAD + _MARKUP_PREAMBLE + r"<(?:html|head|body)[\s>]", re.I | re.S)
_HTML_CLOSING_TAG = re.compile(r"</(?:html|head|body|title|p|div)\s*>", re.I)
_SVG_START = re.compile(r"\A\s*" + _MARKUP_PREAMBLE + r"(?:<!doctype\s+svg[^>]*>\s*)?<svg[\s>]", re.I | re.S)
# Formats people send that we recognise but do not decode: a clear refusal beats "unknown".
_KNOWN_UNSUPPORTED = [
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"PK\x03\x04", "ZIP archive (or DOCX/XLSX/PPTX document)"),
    (b"\x1f\x8b", "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\x7fELF", "executable program"),
    (b"MZ", "Windows executable"),
    (b"FORM", "AIFF/IFF file"),
    (b"8BPS", "Photoshop document"),
    (b"#!AMR", "AMR audio"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Microsoft Office document"),
]


def sniff(head: bytes, path: Path | None = None) -> Sniffed:
    """Kind and format of content from its first bytes.

    `head` is the start of the content (the whole of it for in-memory inputs). Where the magic number is shared by
    audio and video (MP4, Matroska, Ogg, AVI), the container is probed with PyAV: from `path` when given, else from
    `head`. Raises MediaError("empty") for no bytes and MediaError("unsupported") for anything else not handled.
    """
    if not head:
        raise MediaError("empty", "the input has zero bytes")

    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image", "gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "webp")
    if _is_bmp(head):
        return Sniffed("image", "bmp")
    if head.startswith(b"%PDF-"):
        # Read later for its metadata (AIGC labels); its pages are not decoded.
        return Sniffed("text", "pdf")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed("audio", "wav")
    if head[:4] in (b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return Sniffed("audio", "wav")
    if head.startswith(b"fLaC"):
        return Sniffed("audio", "flac")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return _probed(head, path, container="avi", video_format="avi", audio_format="avi")
    if head[4:8] == b"ftyp":
        return _sniff_iso_media(head, path)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        container = "webm" if b"webm" in head[:64] else "mkv"
        return _probed(head, path, container=container, video_format=container, audio_format=container)
    if head.startswith(b"OggS"):
        return _sniff_ogg(head, path)
    if head.startswith(b"\x00\x00\x01\xba"):           # MPEG program stream (.mpg, .vob)
        return _probed(head, path, container="mpeg", video_format="mpeg", audio_format="mpeg")
    if _is_mpeg_ts(head):
        return _probed(head, path, container="mpegts", video_format="mpegts", audio_format="mpegts")
    if head.startswith(b"ID3") and len(head) >= 10 and head[3] in (2, 3, 4):
        return _sniff_after_id3(head, path)
    # The UTF-16 LE byte order mark FF FE is also a valid MPEG audio frame sync: text is tried first.
    if head.startswith(b"\xff\xfe") and (text := readable_text(head[:SNIFF_BYTES])) is not None:
        return _sniff_text(text)
    mpeg_audio = _mpeg_audio_format(head)
    if mpeg_audio:
        return Sniffed("audio", mpeg_audio)
    # Text before the named refusals: prose may well begin with "MZ" or "FORM".
    if (text := readable_text(head[:SNIFF_BYTES])) is not None:
        return _sniff_text(text)
    for magic, name in _KNOWN_UNSUPPORTED:
        if head.startswith(magic):
            raise MediaError("unsupported", f"{name} is not a supported input (images, video, audio or text)")
    raise MediaError(
        "unsupported",
        "unrecognised content: not a supported image (JPEG/PNG/WebP/BMP/GIF), video (MP4/MOV/MKV/WebM/AVI/MPEG), "
        "audio (WAV/FLAC/OGG/MP3/M4A/AAC/Opus) or UTF-8/UTF-16/GB18030 text",
    )


def decode_text_bytes(data: bytes, final: bool = True) -> tuple[str, str]:
    """(text, encoding name) for bytes that are BOM-marked UTF-8/UTF-16, strict UTF-8, or GB18030.

    With final=False a multi-byte character cut off at the end of `data` is tolerated (for sniffing a file's head).
    Raises UnicodeDecodeError when no encoding fits.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return _decode(data[3:], "utf-8", final), "utf-8"
    if data.startswith(b"\xff\xfe"):
        return _decode(data[2:], "utf-16-le", final), "utf-16"
    if data.startswith(b"\xfe\xff"):
        return _decode(data[2:], "utf-16-be", final), "utf-16"
    try:
        return _decode(data, "utf-8", final), "utf-8"
    except UnicodeDecodeError:
        return _decode(data, "gb18030", final), "gb18030"


def readable_text(head: bytes) -> str | None:
    """The bytes decoded, when they decode as text and nearly every character is printable or whitespace."""
    try:
        text, _ = decode_text_bytes(head, final=False)
    except UnicodeDecodeError:
        return None
    if not text or "\x00" in text:
        return None
    readable = sum(1 for ch in text if ch.isprintable() or ch in "\n\r\t\f\v"
                   or unicodedata.category(ch) in _INVISIBLE_IN_TEXT)
    return text if readable >= 0.95 * len(text) else None


def _sniff_text(start: str) -> Sniffed:
    """Text (`start`: its sniffed head, decoded), marked `markup: html` when it is a web page (its provenance is read
    as text's: trailer, front matter); an SVG drawing is refused."""
    if _SVG_START.match(start):
        raise MediaError("unsupported", "SVG vector image is not a supported input (images: JPEG/PNG/WebP/BMP/GIF)")
    html = _HTML_DOCTYPE.match(start) or (_HTML_ELEMENT.match(start) and _HTML_CLOSING_TAG.search(start))
    return Sniffed("text", "text", {"markup": "html"} if html else {})


def _decode(data: bytes, encoding: str, final: bool) -> str:
    return codecs.getincrementaldecoder(encoding)(errors="strict").decode(data, final=final)


def _is_bmp(head: bytes) -> bool:
    if not head.startswith(b"BM") or len(head) < 18:
        return False
    reserved = head[6:10]
    (dib_size,) = struct.unpack("<I", head[14:18])
    return reserved == b"\x00\x00\x00\x00" and dib_size in _BMP_DIB_HEADER_SIZES


def _is_mpeg_ts(head: bytes) -> bool:
    """The sync byte at the start of the first packets (up to _TS_PACKETS_CHECKED, at least 3) of either size."""
    for size, offset in _TS_PACKETS:
        packets = min(_TS_PACKETS_CHECKED, (len(head) - offset) // size)
        if packets >= 3 and all(head[offset + i * size] == 0x47 for i in range(packets)):
            return True
    return False


def _mpeg_audio_format(head: bytes) -> str | None:
    """'mp3' for an MPEG audio frame header, 'aac' for an ADTS header, else None."""
    if len(head) < 4 or head[0] != 0xFF or (head[1] & 0xE0) != 0xE0:
        return None
    layer = (head[1] >> 1) & 0b11
    if layer == 0b00:
        # ADTS: MPEG-4/2 AAC; sampling index 13-15 are reserved.
        sampling_index = (head[2] >> 2) & 0b1111
        return "aac" if (head[1] & 0xF6) == 0xF0 and sampling_index < 13 else None
    version = (head[1] >> 3) & 0b11
    bitrate_index = head[2] >> 4
    sample_rate_index = (head[2] >> 2) & 0b11
    if version == 0b01 or bitrate_index == 0b1111 or sample_rate_index == 0b11:
        return None
    return "mp3"


def _sniff_iso_media(head: bytes, path: Path | None) -> Sniffed:
    brand = head[8:12]
    compatible = {head[i:i + 4] for i in range(16, min(len(head), _ftyp_end(head)), 4)}
    if brand in _HEIF_BRANDS or (brand not in (b"isom", b"mp41", b"mp42", b"qt  ") and compatible & _HEIF_BRANDS):
        raise MediaError("unsupported", "HEIF/HEIC/AVIF images are not supported (convert to JPEG or PNG)")
    if brand in _AUDIO_ONLY_BRANDS:
        return _probed(head, path, container="m4a", video_format="mp4", audio_format="m4a", expect="audio")
    video_format = "mov" if brand == b"qt  " else "mp4"
    return _probed(head, path, container=video_format, video_format=video_format, audio_format="m4a")


def _ftyp_end(head: bytes) -> int:
    (size,) = struct.unpack(">I", head[:4])
    return max(16, min(size, 256))


def _sniff_ogg(head: bytes, path: Path | None) -> Sniffed:
    # The first page carries the first stream's identification header.
    if b"OpusHead" in head[:128]:
        audio_format = "opus"
    else:
        audio_format = "ogg"
    return _probed(head, path, container="ogg", video_format="ogv", audio_format=audio_format, expect="audio")


def _sniff_after_id3(head: bytes, path: Path | None) -> Sniffed:
    """An ID3 tag may precede MP3, AAC or FLAC data: look at the bytes after it, or probe."""
    tag_size = ((head[6] & 0x7F) << 21) | ((head[7] & 0x7F) << 14) | ((head[8] & 0x7F) << 7) | (head[9] & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    after = head[10 + tag_size + footer:]
    if after.startswith(b"fLaC"):
        return Sniffed("audio", "flac")
    if after:
        return Sniffed("audio", _mpeg_audio_format(after) or "mp3")
    # The tag is larger than the head we were given (cover art): the container probe decides.
    return _probed(head, path, container="mp3", video_format="mp3", audio_format="mp3", expect="audio")


def _probed(head: bytes, path: Path | None, container: str, video_format: str, audio_format: str,
            expect: str = "video") -> Sniffed:
    """Ask PyAV which streams the container holds. A container with audio but no video is audio.

    The probe can fail on a partial head (e.g. an MP4 whose index sits at the end); then the magic's usual
    meaning (`expect`) stands and decoding reports any real problem.
    """
    streams = _probe_streams(path if path is not None else head)
    details = {"container": container}
    if streams is None:
        if expect == "audio":
            return Sniffed("audio", audio_format, details)
        return Sniffed("video", video_format, details)
    has_video, has_audio, audio_codec = streams
    details["probed"] = True
    if has_video:
        return Sniffed("video", video_format, details)
    if has_audio:
        return Sniffed("audio", audio_format, details | {"codec": audio_codec})
    raise MediaError("unsupported", f"{container} container holds no video or audio stream")


def _probe_streams(source: Path | bytes) -> tuple[bool, bool, str | None] | None:
    """(has video, has audio, first audio codec) or None when PyAV cannot open the container."""
    try:
        with open_container(source) as container:
            video = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
            audio = list(container.streams.audio)
            return bool(video), bool(audio), (audio[0].codec_context.name if audio else None)
    except (av.FFmpegError, OSError, ValueError, IndexError):
        return None
