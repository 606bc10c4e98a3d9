"""Explicit (visible/audible) labels: check text and audio for them, and add them to images, video, text and audio.

Corner labels on images and video frames are not read back: the offline OCR tried (Debian's tesseract 5.3, corner
crop upscaled, fuzzy "AI-generated" match) found only 22 of 30 of this tool's own labels on dev-set photos at 0.6 s
each, so the check reports "not checked" rather than guessing. The audio cue is Morse "AI" (A = short-long, I = short-short) as a 1 kHz
tone at the start; `audio_cue_present` recognizes exactly that rhythm.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .containers import FRONT_MATTER, decode_text_bytes, jpeg_segments, png_chunks
from .writers import AV_OUTPUT_FORMATS, av_kind, decode_keeping_bom

if TYPE_CHECKING:
    from PIL import Image

    from ..media.types import DecodedMedia

DEFAULT_IMAGE_TEXT = "AI-generated"   # PIL's bundled font has Latin glyphs only; pass font_path for 「AI生成」
DEFAULT_TEXT_PREFIX = "【AI生成】"
MIN_HEIGHT_FRACTION = 0.05            # GB 45438: text height at least 5% of the shorter side
VIDEO_LABEL_SECONDS = 2.0
CUE_FREQUENCY = 1000.0
CUE_UNIT_SECONDS = 0.08
CUE_AMPLITUDE = 0.5
# "AI": dot dash (letter gap) dot dot, then a pause before the content. (on, seconds-in-units) pairs.
MORSE_AI = [(1, 1), (0, 1), (1, 3), (0, 3), (1, 1), (0, 1), (1, 1), (0, 5)]
_TEXT_LABEL = re.compile(
    r"[【\[（(「<]?\s*(?:本内容)?(?:由)?(?:AI|人工智能|ＡＩ)\s*(?:生成|合成)(?:内容)?\s*[】\]）)」>]?"
    r"|(?:AI|A\.I\.)[- ]generated(?: content)?|generated (?:by|with) (?:AI|artificial intelligence)",
    re.I,
)
EDGE_CHARS = 80
_EDGE_PUNCTUATION = re.compile(r"[\s。.!！:：()（）【】\[\]「」<>-]")
_CLOSERS = "】]）)」>"
# A notice stands apart from the prose: what may follow a leading one, or precede a trailing one.
_AFTER_NOTICE = set(_CLOSERS + ":：,，。.!！|-—\n")
_BEFORE_NOTICE = set("【[（(「<。.!！?？…\n:：-—")


# ---------------------------------------------------------------- checks
def check_text(text: str) -> dict:
    """Does the text start or end with an AI-generated notice?"""
    body = text
    front = FRONT_MATTER.match(body)
    if front:
        body = body[front.end():]
    body = body.strip()
    head, tail = body[:EDGE_CHARS], body[-EDGE_CHARS:]
    head_match = _TEXT_LABEL.search(head)
    if head_match and not _EDGE_PUNCTUATION.sub("", head[:head_match.start()]) and _stands_apart_after(
            head_match.group(), head[head_match.end():]):
        return {"checked": True, "found": True, "position": "start", "text": head_match.group().strip()}
    tail_matches = list(_TEXT_LABEL.finditer(tail))
    if tail_matches:
        last = tail_matches[-1]
        before = body[:len(body) - len(tail) + last.start()].rstrip()
        if not _EDGE_PUNCTUATION.sub("", tail[last.end():]) and (not before or before[-1] in _BEFORE_NOTICE):
            return {"checked": True, "found": True, "position": "end", "text": last.group().strip()}
    return {"checked": True, "found": False}


def _stands_apart_after(notice: str, rest: str) -> bool:
    """"【AI生成】今天…" and "AI生成：…" are notices; "AI生成的图片越来越多" is prose about AI."""
    return notice.rstrip().endswith(tuple(_CLOSERS)) or not rest.strip() or rest.lstrip(" \t")[:1] in _AFTER_NOTICE


def audio_cue_present(samples: np.ndarray, sample_rate: int) -> dict:
    """Find the Morse "AI" rhythm of 1 kHz tone in the first seconds of mono float samples."""
    window = samples[: int(4 * sample_rate)].astype(np.float64)
    hop = int(0.01 * sample_rate)
    if len(window) < hop * 20:
        return {"checked": True, "found": False}
    frames = window[: len(window) // hop * hop].reshape(-1, hop)
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(hop), axis=1)) ** 2
    freqs = np.fft.rfftfreq(hop, 1 / sample_rate)
    band = (freqs > CUE_FREQUENCY - 150) & (freqs < CUE_FREQUENCY + 150)
    total = spectrum.sum(axis=1) + 1e-12
    tone = (spectrum[:, band].sum(axis=1) / total > 0.6) & (np.sqrt((frames ** 2).mean(axis=1)) > 0.02)
    runs = _runs(tone)
    on_runs = [(start, length) for value, start, length in runs if value]
    if len(on_runs) < 4:
        return {"checked": True, "found": False}
    first = on_runs[:4]
    unit = min(length for _, length in first)
    symbols = ["-" if length > 2 * unit else "." for _, length in first]
    gaps = [first[i + 1][0] - (first[i][0] + first[i][1]) for i in range(3)]
    found = (symbols == [".", "-", ".", "."] and first[0][0] * 0.01 < 0.5
             and gaps[1] > 2 * unit and gaps[0] <= 2 * unit and gaps[2] <= 2 * unit)
    return {"checked": True, "found": bool(found), "rhythm": "".join(symbols)}


def _runs(mask: np.ndarray) -> list[tuple[bool, int, int]]:
    runs, start = [], 0
    for i in range(1, len(mask) + 1):
        if i == len(mask) or mask[i] != mask[start]:
            runs.append((bool(mask[start]), start, i - start))
            start = i
    return runs


def check_explicit(media: DecodedMedia | None, fmt: str, data: bytes) -> dict:
    """Explicit-label findings for whatever was decoded."""
    modality = getattr(media, "modality", None)
    if fmt == "text":
        # the raw text, not the decoder's normalized copy: front matter and line breaks matter here
        return {"kind": "text", **check_text(decode_text_bytes(data)[0])}
    if fmt == "pdf":
        if modality != "text":
            return {"kind": "text", "checked": False, "reason": "the PDF's text could not be extracted"}
        return {"kind": "text", **check_text(media.text)}
    if modality == "audio":
        return {"kind": "audio cue", **audio_cue_present(media.samples, media.sample_rate)}
    if modality in ("image", "video"):
        return {"kind": "corner label", "checked": False,
                "reason": "visible corner labels are not read: no offline OCR engine proved reliable"}
    return {"checked": False, "reason": "media was not decoded"}


# ---------------------------------------------------------------- writers
def _font(size: int, font_path: str | None):
    from PIL import ImageFont

    return ImageFont.truetype(font_path, size) if font_path else ImageFont.load_default(size=size)


def draw_corner_label(image: Image.Image, text: str = DEFAULT_IMAGE_TEXT,
                      font_path: str | None = None) -> tuple[Image.Image, int]:
    """Draw `text` in the bottom-right corner on a dark box; returns (image, text height in pixels)."""
    from PIL import Image, ImageDraw

    image = image.convert("RGB")
    width, height = image.size
    target = max(1, math.ceil(MIN_HEIGHT_FRACTION * min(width, height)))
    size = max(4, target)
    while True:
        font = _font(size, font_path)
        left, top, right, bottom = font.getbbox(text)
        if bottom - top >= target:
            break
        size += max(1, (target - (bottom - top)) // 2)
    margin = max(2, target // 3)
    x = max(0, width - (right - left) - 2 * margin)
    y = max(0, height - (bottom - top) - 2 * margin)
    overlay = image.copy()
    draw = ImageDraw.Draw(overlay)
    draw.rectangle([x, y, width, height], fill=(0, 0, 0))
    image = Image.blend(image, overlay, 0.6)
    ImageDraw.Draw(image).text((x + margin - left, y + margin - top), text, font=font, fill=(255, 255, 255))
    return image, bottom - top


def add_image_label(src: Path, out: Path, text: str = DEFAULT_IMAGE_TEXT, font_path: str | None = None) -> dict:
    """Write a copy of the image with a corner label; metadata segments/chunks of the original are carried over."""
    from PIL import Image

    data = Path(src).read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        fmt = (image.format or "PNG").upper()
        labelled, text_height = draw_corner_label(image, text, font_path)
        size = image.size
    buffer = io.BytesIO()
    if fmt == "JPEG":
        labelled.save(buffer, "JPEG", quality=95)
        encoded = _carry_jpeg_metadata(data, buffer.getvalue())
    elif fmt == "PNG":
        labelled.save(buffer, "PNG")
        encoded = _carry_png_metadata(data, buffer.getvalue())
    else:
        labelled.save(buffer, fmt)
        encoded = buffer.getvalue()
    Path(out).write_bytes(encoded)
    return {"kind": "corner label", "text": text, "text_height": text_height, "size": list(size),
            "min_height": math.ceil(MIN_HEIGHT_FRACTION * min(size))}


def _carry_jpeg_metadata(original: bytes, encoded: bytes) -> bytes:
    carried = [original[start:end] for marker, start, end, _ in jpeg_segments(original)
               if 0xE1 <= marker <= 0xEF or marker == 0xFE]
    segments = list(jpeg_segments(encoded))
    insert_at = next((end for marker, _, end, _ in segments if marker == 0xE0), 2)
    return encoded[:insert_at] + b"".join(carried) + encoded[insert_at:]


_PNG_METADATA_CHUNKS = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"caBX"}


def _carry_png_metadata(original: bytes, encoded: bytes) -> bytes:
    carried = b"".join(original[start:end] for kind, start, end, _ in png_chunks(original)
                       if kind in _PNG_METADATA_CHUNKS)
    ihdr_end = next(end for kind, _, end, _ in png_chunks(encoded) if kind == b"IHDR")
    return encoded[:ihdr_end] + carried + encoded[ihdr_end:]


def add_text_label(src: Path, out: Path, prefix: str = DEFAULT_TEXT_PREFIX) -> dict:
    """Prefix the text with a notice (after Markdown front matter), keeping its encoding."""
    text, encode = decode_keeping_bom(Path(src).read_bytes())
    front = FRONT_MATTER.match(text)
    cut = front.end() if front else 0
    if check_text(text).get("position") == "start":
        return {"kind": "text prefix", "text": prefix, "added": False, "reason": "text already starts with a notice"}
    Path(out).write_bytes(encode(text[:cut] + prefix + "\n" + text[cut:]))
    return {"kind": "text prefix", "text": prefix, "added": True}


def morse_cue(sample_rate: int) -> np.ndarray:
    """Mono float32 Morse "AI" at CUE_FREQUENCY with 5 ms ramps so the tone edges do not click."""
    pieces = []
    ramp = max(1, int(0.005 * sample_rate))
    for on, units in MORSE_AI:
        n = int(units * CUE_UNIT_SECONDS * sample_rate)
        if not on:
            pieces.append(np.zeros(n, np.float32))
            continue
        t = np.arange(n) / sample_rate
        tone = CUE_AMPLITUDE * np.sin(2 * np.pi * CUE_FREQUENCY * t)
        envelope = np.ones(n)
        envelope[:ramp] = np.linspace(0, 1, ramp)
        envelope[-ramp:] = np.linspace(1, 0, ramp)
        pieces.append((tone * envelope).astype(np.float32))
    return np.concatenate(pieces)


def add_audio_cue(src: Path, out: Path) -> dict:
    """Prepend the Morse cue; same sample rate, channels, container and sample format as the source."""
    import soundfile as sf

    info = sf.info(str(src))
    samples, rate = sf.read(str(src), always_2d=True, dtype="float32")
    cue = np.repeat(morse_cue(rate)[:, None], samples.shape[1], axis=1)
    sf.write(str(out), np.concatenate([cue, samples]), rate, subtype=info.subtype, format=info.format)
    return {"kind": "audio cue", "cue": "Morse AI (.- ..)", "seconds": round(len(cue) / rate, 3)}


def add_video_label(src: Path, out: Path, text: str = DEFAULT_IMAGE_TEXT, font_path: str | None = None,
                    seconds: float = VIDEO_LABEL_SECONDS) -> dict:
    """Re-encode the first video stream with a corner label on frames in the first `seconds`; other streams are
    copied packet for packet. Container tags are kept."""
    import av

    labelled_frames = 0
    with av.open(str(src)) as source:
        video_in = source.streams.video[0]
        muxer = AV_OUTPUT_FORMATS[av_kind(source.format.name, Path(src))]
        options = {"movflags": "use_metadata_tags"} if muxer in ("mp4", "mov", "ipod") else {}
        with av.open(str(out), "w", format=muxer, options=options) as target:
            target.metadata.update(source.metadata)
            codec = _encoder_for(video_in.codec_context.name)
            video_out = target.add_stream(codec, rate=video_in.average_rate or 25)
            video_out.width, video_out.height = video_in.codec_context.width, video_in.codec_context.height
            video_out.pix_fmt = "yuv420p"
            video_out.time_base = video_in.time_base
            copied = {s.index: target.add_stream_from_template(s) for s in source.streams
                      if s.type == "audio"}
            for packet in source.demux():
                if packet.stream.index == video_in.index:
                    for frame in packet.decode():
                        if frame.time is not None and frame.time < seconds:
                            picture, _ = draw_corner_label(frame.to_image(), text, font_path)
                            new = av.VideoFrame.from_image(picture)
                            labelled_frames += 1
                        else:
                            new = av.VideoFrame.from_image(frame.to_image())
                        new.pts, new.time_base = frame.pts, frame.time_base
                        for encoded in video_out.encode(new):
                            target.mux(encoded)
                elif packet.stream.index in copied and packet.size:
                    packet.stream = copied[packet.stream.index]
                    target.mux(packet)
            for encoded in video_out.encode():
                target.mux(encoded)
    return {"kind": "video corner label", "text": text, "seconds": seconds, "labelled_frames": labelled_frames,
            "codec": codec}


def _encoder_for(decoder: str) -> str:
    import av

    preferred = {"h264": "libx264", "hevc": "libx264", "vp9": "libvpx-vp9", "vp8": "libvpx"}.get(decoder, decoder)
    return preferred if preferred in av.codecs_available else "libx264"
