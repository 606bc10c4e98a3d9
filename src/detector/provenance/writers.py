"""Measures Art. 6 write-back: put one `AIGC` label into a file, filling the propagator fields and keeping the
producer fields, at the container level only (pixels and samples are never re-encoded).

Where each format gets its label:
- JPEG: XMP (APP1), property `TC260:AIGC`; PNG: XMP (iTXt `XML:com.adobe.xmp`); WebP: the `XMP ` chunk.
- MP4/MOV/M4A: QuickTime metadata key `AIGC` (moov/udta/meta keys+ilst); MKV/WebM: a Matroska tag `AIGC`.
  Both by a packet-for-packet remux (PyAV), never a re-encode.
- MP3: ID3 `TXXX:AIGC`; FLAC/OGG/Opus: Vorbis comment `AIGC`; WAV: `LIST/INFO` chunk `AIGC`.
- PDF: the document information dictionary key `/AIGC` (pypdf rewrites the file; any XMP copy is removed).
- Markdown: `AIGC:` in the YAML front matter; other text: a last line `{"AIGC":{...}}` (the text trailer).
Non-XMP places hold the wrapped form `{"AIGC":{...}}`; XMP holds the inner object.

Every copy of an older label that the writer knows how to reach is replaced, and the result is read back: if the
output does not hold exactly one valid label equal to the one written, it is deleted and the write fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from detector.media.text import front_matter_without_label

from .aigc import FIELDS, MISSPELLINGS, build_label, inner_json, wrapped_json
from .containers import (
    EXIF_HEADER, EXIF_IFD, EXIF_USER_COMMENT, FRONT_MATTER, XMP_JPEG_HEADER, decode_text_bytes, jpeg_segments,
    png_chunks, parse_png_text_chunk, read_metadata, riff_chunks, riff_form, text_trailer_line,
)
from .implicit import scan_labels
from .xmp import without_aigc, xmp_with_label

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown", ".mkd"}
AV_OUTPUT_FORMATS = {"mp4": "mp4", "mov": "mov", "m4a": "ipod", "mkv": "matroska", "webm": "webm"}
WRITABLE_FORMATS = ("jpeg", "png", "webp", "mp4", "mov", "m4a", "mkv", "webm", "mp3", "wav", "flac", "ogg", "opus", "pdf",
                    "text")
MAX_JPEG_SEGMENT = 65533


class LabelWriteError(ValueError):
    """The label could not be written; nothing was left at the output path."""


def sniff_format(path: Path) -> str:
    from detector.media import sniff

    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
    return sniff(head, path).format


def write_label(src: Path, out: Path, *, propagator: str, propagate_id: str, label: str | None = None,
                producer: str | None = None, produce_id: str | None = None, fmt: str | None = None,
                label_source: Path | None = None) -> dict:
    """Write one label into a copy of `src` at `out` (which may be `src` itself).

    The producer fields (ContentProducer, ProduceID, ReservedCode1) and ReservedCode2 come from the label already in
    `label_source` (default `src`); `producer`/`produce_id` fill them only when that file has none. `label` overrides
    the Label value; without it the existing one is kept, and a file with no label needs one.
    """
    src, out = Path(src), Path(out)
    fmt = fmt or sniff_format(src)
    if fmt not in WRITABLE_FORMATS:
        raise LabelWriteError(f"writing labels into {fmt} files is not supported (supported: {', '.join(WRITABLE_FORMATS)})")
    source_bytes = Path(label_source or src).read_bytes()
    source_fmt = fmt if label_source is None else sniff_format(Path(label_source))
    previous = _existing_fields(source_bytes, source_fmt)
    new_label = label or previous.get("Label")
    if not new_label:
        raise LabelWriteError("the file has no label to propagate; give the Label value (1, 2 or 3)")
    try:
        fields = build_label(
            label=new_label,
            producer=previous.get("ContentProducer") or producer or "",
            produce_id=previous.get("ProduceID") or produce_id or "",
            reserved1=previous.get("ReservedCode1", ""),
            propagator=propagator, propagate_id=propagate_id,
            reserved2=previous.get("ReservedCode2", ""),
        )
    except ValueError as exc:
        raise LabelWriteError(f"the label to write is invalid: {exc}") from None

    out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=".label-", suffix=src.suffix, dir=out.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        _WRITERS[fmt](src, tmp, fields)
        location = _verify(tmp, fmt, fields)
        os.replace(tmp, out)
    except LabelWriteError:
        raise
    except Exception as exc:
        raise LabelWriteError(f"could not write the label into {src.name}: {type(exc).__name__}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return {"format": fmt, "output": str(out), "location": location, "label": fields,
            "previous": previous or None}


def _existing_fields(data: bytes, fmt: str) -> dict:
    """Fields of the first readable existing label, misspelled names mapped to the standard ones."""
    labels = scan_labels(read_metadata(data, fmt)).labels
    for parsed in sorted(labels, key=lambda p: not p.valid):
        if parsed.fields:
            standard = {}
            for key, value in parsed.fields.items():
                name = MISSPELLINGS.get(key) or next((f for f in FIELDS if f.lower() == key.lower()), None)
                if name and isinstance(value, str):
                    standard.setdefault(name, value)
            return standard
    return {}


def _verify(path: Path, fmt: str, fields: dict) -> str:
    """The location of the one label in the written file; raises if there is not exactly one equal to `fields`."""
    scan = scan_labels(read_metadata(path.read_bytes(), fmt))
    if len(scan.labels) != 1:
        raise LabelWriteError(f"after writing, the file holds {len(scan.labels)} labels, not one; output discarded "
                              f"({', '.join(p.location for p in scan.labels)})")
    found = scan.labels[0]
    if found.fields != fields or not found.valid:
        raise LabelWriteError(f"the label read back differs from the one written ({found.errors}); output discarded")
    return found.location


# ---------------------------------------------------------------- images
def _exif_without_label(payload: bytes) -> bytes:
    """The EXIF block with its UserComment removed (used only when that comment holds a label)."""
    from PIL import Image

    exif = Image.Exif()
    exif.load(payload)
    exif_ifd = exif.get_ifd(EXIF_IFD)
    exif_ifd.pop(EXIF_USER_COMMENT, None)
    return exif.tobytes()


def _holds_label(value: bytes) -> bool:
    return b'"AIGC"' in value or b"AIGC" in value[:64]


def _write_jpeg(src: Path, out: Path, fields: dict) -> None:
    data = src.read_bytes()
    parts: list[bytes] = [data[:2]]
    old_xmp: bytes | None = None
    insert_index = 1
    cursor = 2
    for marker, start, end, payload in jpeg_segments(data):
        parts.append(data[cursor:start])
        cursor = end
        if marker == 0xE1 and payload.startswith(XMP_JPEG_HEADER):
            old_xmp = payload[len(XMP_JPEG_HEADER):]
            insert_index = len(parts)
            continue
        if marker == 0xE1 and payload.startswith(EXIF_HEADER) and _user_comment_has_label(payload):
            parts.append(_segment(0xE1, _exif_without_label(payload)))
        elif marker == 0xFE and _holds_label(payload):
            continue
        else:
            parts.append(data[start:end])
        if marker in (0xE0, 0xE1) and old_xmp is None:
            insert_index = len(parts)
    parts.append(data[cursor:])
    xmp = xmp_with_label(old_xmp, inner_json(fields))
    parts.insert(insert_index, _segment(0xE1, XMP_JPEG_HEADER + xmp))
    out.write_bytes(b"".join(parts))


def _user_comment_has_label(exif_payload: bytes) -> bool:
    from PIL import Image

    exif = Image.Exif()
    exif.load(exif_payload)
    comment = exif.get_ifd(EXIF_IFD).get(EXIF_USER_COMMENT)
    if isinstance(comment, str):
        comment = comment.encode("utf-8", "replace")
    return bool(comment) and _holds_label(comment)


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) + 2 > MAX_JPEG_SEGMENT + 2:
        raise LabelWriteError(f"JPEG metadata segment would be {len(payload)} bytes; the limit is {MAX_JPEG_SEGMENT}")
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def _write_png(src: Path, out: Path, fields: dict) -> None:
    data = src.read_bytes()
    kept: list[bytes] = [data[:8]]
    old_xmp: bytes | None = None
    xmp_index = None
    for kind, start, end, body in png_chunks(data):
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            key, text = parse_png_text_chunk(kind, body)
            if key == "XML:com.adobe.xmp":
                old_xmp = text if isinstance(text, bytes) else text.encode("utf-8")
                xmp_index = len(kept)
                continue
            if key.lower() == "aigc" or _holds_label(text if isinstance(text, bytes) else text.encode()):
                continue
        if kind == b"eXIf" and _user_comment_has_label(body):
            kept.append(_png_chunk(b"eXIf", _exif_without_label(body)[len(EXIF_HEADER):]))
            continue
        kept.append(data[start:end])
        if kind == b"IHDR" and xmp_index is None:
            xmp_index = len(kept)
    xmp = xmp_with_label(old_xmp, inner_json(fields))
    kept.insert(xmp_index, _png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp))
    out.write_bytes(b"".join(kept))


_WEBP_XMP_FLAG = 0x04
_WEBP_ALPHA_FLAG = 0x10


def _write_webp(src: Path, out: Path, fields: dict) -> None:
    """XMP chunk at the end, as the WebP container spec places it; a simple (VP8/VP8L) file gets the VP8X header
    that announces metadata."""
    from PIL import Image

    data = src.read_bytes()
    chunks = list(riff_chunks(data, 12, riff_form(data, b"WEBP")))
    old_xmp = next((body for fourcc, _, _, body in chunks if fourcc == b"XMP "), None)
    xmp = xmp_with_label(old_xmp, inner_json(fields))
    kept = [(fourcc, data[start:end], body) for fourcc, start, end, body in chunks if fourcc != b"XMP "]
    if kept[0][0] == b"VP8X":
        header = bytes([kept[0][2][0] | _WEBP_XMP_FLAG]) + kept[0][2][1:]
    else:
        with Image.open(src) as image:
            width, height = image.size
            alpha = _WEBP_ALPHA_FLAG if "A" in image.mode else 0
        header = (bytes([_WEBP_XMP_FLAG | alpha, 0, 0, 0]) + (width - 1).to_bytes(3, "little")
                  + (height - 1).to_bytes(3, "little"))
        kept.insert(0, (b"VP8X", b"", b""))
    parts = [_riff_chunk(b"VP8X", header)] + [raw for _, raw, _ in kept[1:]] + [_riff_chunk(b"XMP ", xmp)]
    body = b"WEBP" + b"".join(parts)
    out.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)


# ---------------------------------------------------------------- video/audio containers: packet-for-packet remux
def _write_av(src: Path, out: Path, fields: dict) -> None:
    import av

    with av.open(str(src)) as source:
        fmt = AV_OUTPUT_FORMATS[av_kind(source.format.name, src)]
        options = {"movflags": "use_metadata_tags"} if fmt in ("mp4", "mov", "ipod") else {}
        with av.open(str(out), "w", format=fmt, options=options) as target:
            metadata = {k: v for k, v in source.metadata.items() if k.lower() != "aigc"}
            metadata["AIGC"] = wrapped_json(fields)
            target.metadata.update(metadata)
            streams = {}
            for stream in source.streams:
                if stream.type not in ("audio", "video", "subtitle"):
                    raise LabelWriteError(f"stream {stream.index} is {stream.type}; it cannot be copied by a remux")
                streams[stream.index] = target.add_stream_from_template(stream)
                streams[stream.index].metadata.update(stream.metadata)
            for packet in source.demux():
                if packet.size == 0:   # the demuxer's end-of-stream flush packet
                    continue
                packet.stream = streams[packet.stream.index]
                target.mux(packet)


def av_kind(format_name: str, src: Path) -> str:
    names = format_name.split(",")
    if "matroska" in names or "webm" in names:
        return "webm" if src.suffix.lower() == ".webm" else "mkv"
    return {".mov": "mov", ".m4a": "m4a"}.get(src.suffix.lower(), "mp4")


def _write_mp3(src: Path, out: Path, fields: dict) -> None:
    from mutagen.id3 import ID3, TXXX, ID3NoHeaderError

    shutil.copyfile(src, out)
    try:
        tags = ID3(out)
    except ID3NoHeaderError:
        tags = ID3()
    for key in [k for k, frame in tags.items() if frame.FrameID == "TXXX" and frame.desc.lower() == "aigc"]:
        del tags[key]
    tags.add(TXXX(encoding=3, desc="AIGC", text=[wrapped_json(fields)]))
    tags.save(out)


def _write_vorbis(src: Path, out: Path, fields: dict) -> None:
    import mutagen

    shutil.copyfile(src, out)
    audio = mutagen.File(out)
    if audio is None:
        raise LabelWriteError(f"{src.name} is not a file mutagen can tag")
    if audio.tags is None:
        audio.add_tags()
    for key in [k for k in audio.tags.keys() if k.lower() == "aigc"]:
        del audio.tags[key]
    audio.tags["AIGC"] = [wrapped_json(fields)]
    audio.save()


def _write_wav(src: Path, out: Path, fields: dict) -> None:
    data = src.read_bytes()
    end = riff_form(data, b"WAVE")
    value = wrapped_json(fields).encode("ascii") + b"\x00"
    label_chunk = _riff_chunk(b"AIGC", value)
    chunks: list[bytes] = []
    placed = False
    for fourcc, start, chunk_end, body in riff_chunks(data, 12, end):
        if fourcc == b"LIST" and body[:4] == b"INFO":
            subchunks = [body[s:e] for sub, s, e, _ in riff_chunks(body, 4, len(body)) if sub.upper() != b"AIGC"]
            if not placed:
                subchunks.append(label_chunk)
                placed = True
            chunks.append(_riff_chunk(b"LIST", b"INFO" + b"".join(subchunks)))
        else:
            chunks.append(data[start:chunk_end])
    if not placed:
        chunks.append(_riff_chunk(b"LIST", b"INFO" + label_chunk))
    body = b"WAVE" + b"".join(chunks)
    out.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body + data[end:])


def _riff_chunk(fourcc: bytes, body: bytes) -> bytes:
    return fourcc + len(body).to_bytes(4, "little") + body + (b"\x00" if len(body) & 1 else b"")


# ---------------------------------------------------------------- PDF
def _write_pdf(src: Path, out: Path, fields: dict) -> None:
    import pypdf
    from pypdf.generic import NameObject, TextStringObject

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(src, strict=False))
    metadata = writer.root_object.get("/Metadata")
    if metadata is not None:
        stream = metadata.get_object()
        packet = stream.get_data().decode("utf-8", "replace")
        if "AIGC" in packet:
            stream.set_data(without_aigc(packet).encode("utf-8"))
    writer.add_metadata({NameObject("/AIGC"): TextStringObject(wrapped_json(fields))})
    with out.open("wb") as handle:
        writer.write(handle)


# ---------------------------------------------------------------- text and Markdown
def _write_text(src: Path, out: Path, fields: dict) -> None:
    text, encode = decode_keeping_bom(src.read_bytes())
    trailer = text_trailer_line(text)
    if trailer:
        text = text[:trailer[0]].rstrip("\n") + "\n"
    front = FRONT_MATTER.match(text)
    line = "AIGC: " + inner_json(fields)
    if front or src.suffix.lower() in MARKDOWN_SUFFIXES:
        if front:
            kept = front_matter_without_label(front.group(1))
            opening = text[:front.start(1)]
            text = opening + "\n".join(kept + [line]) + text[front.end(1):]
        else:
            text = f"---\n{line}\n---\n" + text
    else:
        text = text.rstrip("\n") + "\n" + wrapped_json(fields) + "\n" if text.strip() else wrapped_json(fields) + "\n"
    out.write_bytes(encode(text))


def decode_keeping_bom(data: bytes) -> tuple[str, Callable[[str], bytes]]:
    """(text, encoder) where the encoder writes the same encoding and byte-order mark back."""
    text, codec = decode_text_bytes(data)
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return text, lambda value, bom=bom, encoding=encoding: bom + value.encode(encoding)
    return text, lambda value: value.encode(codec)


_WRITERS = {
    "jpeg": _write_jpeg, "png": _write_png, "webp": _write_webp,
    "mp4": _write_av, "mov": _write_av, "m4a": _write_av, "mkv": _write_av, "webm": _write_av,
    "mp3": _write_mp3, "flac": _write_vorbis, "ogg": _write_vorbis, "opus": _write_vorbis,
    "wav": _write_wav, "pdf": _write_pdf, "text": _write_text,
}
