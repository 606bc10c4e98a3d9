"""Read the metadata fields of each container format: byte-level walkers for JPEG, PNG, WebP, RIFF/WAV and MP4,
mutagen for ID3 and Vorbis comments, PyAV for Matroska/AVI tags, a small parser for PDF Info strings, and the text
front matter / trailer conventions. Every field comes back with the place it was found, so that labels, generator
traces and tamper signs can all name their source. Readers never raise: a broken structure becomes an error string.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from detector.media.sniff import decode_text_bytes
from detector.media.text import FRONT_MATTER, text_trailer_line

XMP_JPEG_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_JPEG_EXTENSION_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
EXIF_HEADER = b"Exif\x00\x00"
XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_FIELD_BYTES = 8 * 1024 * 1024     # one metadata value; larger ones are reported, not read
MAX_INFLATED_BYTES = 8 * 1024 * 1024  # zTXt/iTXt decompression-bomb guard
EXIF_USER_COMMENT = 0x9286
EXIF_IFD = 0x8769
EXIF_TEXT_TAGS = {0x010E: "ImageDescription", 0x010F: "Make", 0x0110: "Model", 0x0131: "Software",
                  0x013B: "Artist", 0x8298: "Copyright", 0x9C9C: "XPComment"}


class MetadataError(ValueError):
    """A metadata structure is broken or too large to read."""


@dataclass
class MetaField:
    location: str          # where: container/field, e.g. "png/tEXt:AIGC"
    key: str               # field name in its container ("XMP" for whole XMP packets)
    value: str | bytes
    kind: str = "text"     # text | xmp | exif-user-comment


@dataclass
class Metadata:
    fields: list[MetaField] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)   # metadata blocks present (EXIF, XMP, ICC, ...)

    def add(self, location: str, key: str, value: str | bytes, kind: str = "text") -> None:
        if len(value) > MAX_FIELD_BYTES:
            self.errors.append(f"{location}: field is {len(value)} bytes; fields over {MAX_FIELD_BYTES} are not read")
            return
        self.fields.append(MetaField(location, key, value, kind))


def read_metadata(data: bytes, fmt: str) -> Metadata:
    meta = Metadata()
    reader = _READERS.get(fmt)
    if reader is None:
        return meta
    try:
        reader(data, meta)
    except MetadataError as exc:
        meta.errors.append(f"{fmt} metadata: {exc}")
    except Exception as exc:  # a third-party parser failing on hostile bytes must not end the scan
        meta.errors.append(f"{fmt} metadata could not be read: {type(exc).__name__}: {exc}")
    return meta


# ---------------------------------------------------------------- JPEG
def jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """Yield (marker, start, end, payload) for each marker segment before the entropy-coded scan."""
    if data[:2] != b"\xff\xd8":
        raise MetadataError("not a JPEG (no SOI marker)")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise MetadataError(f"JPEG marker expected at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker == 0xD9:
            return
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise MetadataError(f"JPEG segment at byte {pos} runs past the end of the file (truncated)")
        yield marker, pos, end, data[pos + 4:end]
        if marker == 0xDA:
            return
        pos = end


def _read_jpeg(data: bytes, meta: Metadata) -> None:
    extended_xmp: list[bytes] = []
    for marker, _, _, payload in jpeg_segments(data):
        if marker == 0xE1 and payload.startswith(XMP_JPEG_HEADER):
            meta.containers.append("XMP")
            meta.add("jpeg/APP1:XMP", "XMP", payload[len(XMP_JPEG_HEADER):], "xmp")
        elif marker == 0xE1 and payload.startswith(XMP_JPEG_EXTENSION_HEADER):
            extended_xmp.append(payload[len(XMP_JPEG_EXTENSION_HEADER) + 32 + 8:])  # GUID, full length, offset
        elif marker == 0xE1 and payload.startswith(EXIF_HEADER):
            meta.containers.append("EXIF")
            _read_exif(payload, "jpeg/APP1:EXIF", meta)
        elif marker == 0xE2 and payload.startswith(b"ICC_PROFILE\x00"):
            meta.containers.append("ICC")
        elif marker == 0xEB:
            meta.containers.append("JUMBF")
        elif marker == 0xFE:
            meta.containers.append("COM")
            meta.add("jpeg/COM", "Comment", payload)
    if extended_xmp:
        meta.add("jpeg/APP1:ExtendedXMP", "XMP", b"".join(extended_xmp), "xmp")


def _read_exif(payload: bytes, location: str, meta: Metadata) -> None:
    from PIL import Image

    exif = Image.Exif()
    try:
        exif.load(payload)
        base_tags = dict(exif)
        exif_ifd = dict(exif.get_ifd(EXIF_IFD))
    except Exception as exc:
        meta.errors.append(f"{location}: EXIF could not be parsed: {type(exc).__name__}: {exc}")
        return
    for tag, name in EXIF_TEXT_TAGS.items():
        value = base_tags.get(tag)
        if isinstance(value, bytes) and tag == 0x9C9C:
            value = value.decode("utf-16-le", "replace").rstrip("\x00")
        if isinstance(value, (str, bytes)) and value:
            meta.add(f"{location}/{name}", name, value)
    comment = exif_ifd.get(EXIF_USER_COMMENT)
    if comment:
        meta.add(f"{location}/UserComment", "UserComment", decode_user_comment(comment), "exif-user-comment")


def decode_user_comment(value: bytes | str) -> str | bytes:
    """EXIF UserComment: an 8-byte character-code prefix, then the text."""
    if isinstance(value, str):
        return value
    code, body = value[:8], value[8:]
    if code.startswith(b"UNICODE"):
        encoding = "utf-16-be" if body[:1] == b"\x00" else "utf-16-le"
        return body.decode(encoding, "replace").rstrip("\x00")
    if code.startswith(b"ASCII") or code == b"\x00" * 8:
        return body.rstrip(b"\x00")  # bytes: validated as UTF-8 where it is used
    if code.startswith(b"JIS"):
        return body.decode("shift_jis", "replace").rstrip("\x00")
    return value.rstrip(b"\x00")


# ---------------------------------------------------------------- PNG
def png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int, bytes]]:
    """Yield (type, start, end, body) for each chunk."""
    if not data.startswith(PNG_SIGNATURE):
        raise MetadataError("not a PNG (bad signature)")
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise MetadataError(f"PNG chunk {kind!r} at byte {pos} runs past the end of the file (truncated)")
        yield kind, pos, end, data[pos + 8:pos + 8 + length]
        if kind == b"IEND":
            return
        pos = end


def inflate_bounded(body: bytes, what: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(body, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise MetadataError(f"{what}: compressed text is corrupt ({exc})") from None
    if inflater.unconsumed_tail:
        raise MetadataError(f"{what}: compressed text inflates past {MAX_INFLATED_BYTES} bytes")
    return out


def parse_png_text_chunk(kind: bytes, body: bytes) -> tuple[str, bytes | str]:
    """(keyword, text) of a tEXt/zTXt/iTXt chunk; text is str for iTXt (UTF-8 decoded), latin-1 bytes otherwise."""
    keyword, sep, rest = body.partition(b"\x00")
    if not sep:
        raise MetadataError(f"{kind.decode()} chunk has no keyword terminator")
    key = keyword.decode("latin-1")
    if kind == b"tEXt":
        return key, rest
    if kind == b"zTXt":
        return key, inflate_bounded(rest[1:], f"zTXt {key}")
    flag = rest[:1]   # then the compression method byte, the language tag and the translated keyword
    _lang, _, rest = rest[2:].partition(b"\x00")
    _translated, _, text = rest.partition(b"\x00")
    if flag == b"\x01":
        text = inflate_bounded(text, f"iTXt {key}")
    return key, text


def _read_png(data: bytes, meta: Metadata) -> None:
    for kind, _, _, body in png_chunks(data):
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            try:
                key, text = parse_png_text_chunk(kind, body)
            except MetadataError as exc:
                meta.errors.append(f"png/{kind.decode()}: {exc}")
                continue
            if key == "XML:com.adobe.xmp":
                meta.containers.append("XMP")
                meta.add(f"png/{kind.decode()}:{key}", "XMP", text, "xmp")
            else:
                meta.containers.append("PNG text")
                meta.add(f"png/{kind.decode()}:{key}", key, text)
        elif kind == b"eXIf":
            meta.containers.append("EXIF")
            _read_exif(body, "png/eXIf", meta)
        elif kind == b"iCCP":
            meta.containers.append("ICC")
        elif kind == b"caBX":
            meta.containers.append("JUMBF")


# ---------------------------------------------------------------- RIFF (WebP, WAV)
def riff_chunks(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int, bytes]]:
    """Yield (fourcc, start, end, body) for chunks in [start, end); bodies are padded to even length."""
    pos = start
    while pos + 8 <= end:
        fourcc = data[pos:pos + 4]
        size = int.from_bytes(data[pos + 4:pos + 8], "little")
        body_end = pos + 8 + size
        if body_end > end:
            raise MetadataError(f"RIFF chunk {fourcc!r} at byte {pos} runs past its parent (truncated)")
        yield fourcc, pos, body_end + (size & 1), data[pos + 8:body_end]
        pos = body_end + (size & 1)


def riff_form(data: bytes, form: bytes) -> int:
    if data[:4] != b"RIFF" or data[8:12] != form:
        raise MetadataError(f"not a RIFF {form.decode()} file")
    return min(len(data), 8 + int.from_bytes(data[4:8], "little"))


def _read_webp(data: bytes, meta: Metadata) -> None:
    for fourcc, _, _, body in riff_chunks(data, 12, riff_form(data, b"WEBP")):
        if fourcc == b"XMP ":
            meta.containers.append("XMP")
            meta.add("webp/XMP", "XMP", body, "xmp")
        elif fourcc == b"EXIF":
            meta.containers.append("EXIF")
            _read_exif(body, "webp/EXIF", meta)
        elif fourcc == b"ICCP":
            meta.containers.append("ICC")


def _read_wav(data: bytes, meta: Metadata) -> None:
    for fourcc, _, _, body in riff_chunks(data, 12, riff_form(data, b"WAVE")):
        if fourcc == b"LIST" and body[:4] == b"INFO":
            meta.containers.append("LIST/INFO")
            for sub_id, _, _, value in riff_chunks(body, 4, len(body)):
                key = sub_id.decode("latin-1")
                meta.add(f"wav/LIST/INFO:{key}", key, value.rstrip(b"\x00"))
        elif fourcc == b"_PMX":
            meta.containers.append("XMP")
            meta.add("wav/_PMX", "XMP", body, "xmp")
        elif fourcc in (b"id3 ", b"ID3 "):
            meta.containers.append("ID3")
            _read_id3_tags(body, "wav/id3", meta)


# ---------------------------------------------------------------- MP4 / MOV / M4A
def mp4_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """Yield (type, start, body_start, end) for ISO-BMFF boxes in [start, end)."""
    pos = start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise MetadataError("MP4 box with a truncated 64-bit size")
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise MetadataError(f"MP4 box {kind!r} at byte {pos} runs past its parent (truncated)")
        yield kind, pos, pos + header, pos + size
        pos += size


def meta_children_start(data: bytes, body_start: int) -> int:
    """ISO `meta` is a full box (4 bytes version/flags before children); QuickTime's is not."""
    return body_start if data[body_start + 4:body_start + 8] == b"hdlr" else body_start + 4


def _read_mp4(data: bytes, meta: Metadata) -> None:
    for kind, start, body, end in mp4_boxes(data, 0, len(data)):
        if kind == b"moov":
            _read_mp4_container(data, body, end, "moov", meta)
        elif kind == b"uuid" and data[body:body + 16] == XMP_UUID:
            meta.containers.append("XMP")
            meta.add("mp4/uuid:XMP", "XMP", data[body + 16:end], "xmp")


def _read_mp4_container(data: bytes, start: int, end: int, path: str, meta: Metadata) -> None:
    for kind, _, body, box_end in mp4_boxes(data, start, end):
        name = kind.decode("latin-1")
        if kind == b"meta":
            _read_mp4_meta(data, meta_children_start(data, body), box_end, f"{path}/meta", meta)
        elif kind == b"udta" or kind == b"trak":
            _read_mp4_container(data, body, box_end, f"{path}/{name}", meta)
        elif kind == b"XMP_":
            meta.containers.append("XMP")
            meta.add(f"mp4/{path}/XMP_", "XMP", data[body:box_end], "xmp")
        elif path.endswith("udta") and kind[:1] == b"\xa9" and box_end - body > 4:
            # QuickTime user-data text: 16-bit length, 16-bit language, text
            length = int.from_bytes(data[body:body + 2], "big")
            meta.add(f"mp4/{path}/{name}", name, data[body + 4:body + 4 + length])


def _read_mp4_meta(data: bytes, start: int, end: int, path: str, meta: Metadata) -> None:
    keys: list[str] = []
    boxes = list(mp4_boxes(data, start, end))
    for kind, _, body, box_end in boxes:
        if kind == b"keys":
            count = int.from_bytes(data[body + 4:body + 8], "big")
            pos = body + 8
            for _ in range(count):
                size = int.from_bytes(data[pos:pos + 4], "big")
                if size < 8 or pos + size > box_end:
                    raise MetadataError(f"{path}/keys entry runs past its box")
                keys.append(data[pos + 8:pos + size].decode("utf-8", "replace"))
                pos += size
    for kind, _, body, box_end in boxes:
        if kind != b"ilst":
            continue
        meta.containers.append("MP4 tags")
        for item, _, item_body, item_end in mp4_boxes(data, body, box_end):
            index = int.from_bytes(item, "big")
            if item == b"----":
                _read_mp4_freeform(data, item_body, item_end, path, meta)
                continue
            if keys and 1 <= index <= len(keys):
                name, where = keys[index - 1], f"mp4/{path}/keys:{keys[index - 1]}"
            else:
                name = item.decode("latin-1")
                where = f"mp4/{path}/ilst:{name}"
            for value in _mp4_data_values(data, item_body, item_end):
                meta.add(where, name, value)


def _read_mp4_freeform(data: bytes, start: int, end: int, path: str, meta: Metadata) -> None:
    mean = name = ""
    values: list[bytes] = []
    for kind, _, body, box_end in mp4_boxes(data, start, end):
        if kind == b"mean":
            mean = data[body + 4:box_end].decode("utf-8", "replace")
        elif kind == b"name":
            name = data[body + 4:box_end].decode("utf-8", "replace")
        elif kind == b"data":
            values.append(data[body + 8:box_end])
    for value in values:
        meta.add(f"mp4/{path}/ilst:----:{mean}:{name}", name, value)


def _mp4_data_values(data: bytes, start: int, end: int) -> list[bytes]:
    return [data[body + 8:box_end] for kind, _, body, box_end in mp4_boxes(data, start, end) if kind == b"data"]


# ---------------------------------------------------------------- audio tags via mutagen, video tags via PyAV
def _read_id3_tags(data: bytes, location: str, meta: Metadata) -> None:
    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        tags = ID3(io.BytesIO(data))
    except ID3NoHeaderError:
        return
    meta.containers.append("ID3")
    for frame in tags.values():
        if frame.FrameID == "TXXX":
            for text in frame.text:
                meta.add(f"{location}/TXXX:{frame.desc}", frame.desc, str(text))
        elif frame.FrameID == "COMM":
            for text in frame.text:
                meta.add(f"{location}/COMM", "Comment", str(text))
        elif frame.FrameID.startswith("T"):
            for text in getattr(frame, "text", []):
                meta.add(f"{location}/{frame.FrameID}", frame.FrameID, str(text))


def _read_mp3(data: bytes, meta: Metadata) -> None:
    _read_id3_tags(data, "mp3/ID3", meta)


def _read_vorbis(data: bytes, meta: Metadata) -> None:
    import mutagen

    audio = mutagen.File(io.BytesIO(data))
    if audio is None or audio.tags is None:
        return
    kind = type(audio).__name__.lower()
    meta.containers.append("Vorbis comments")
    for key, value in list(audio.tags):
        meta.add(f"{kind}/VorbisComment:{key}", key, value)


def _read_av_tags(data: bytes, meta: Metadata) -> None:
    import av

    with av.open(io.BytesIO(data), metadata_errors="replace") as container:
        fmt = container.format.name.split(",")[0]
        for key, value in container.metadata.items():
            meta.add(f"{fmt}/tags:{key}", key, value)
        for stream in container.streams:
            for key, value in stream.metadata.items():
                meta.add(f"{fmt}/stream{stream.index}/tags:{key}", key, value)
    if meta.fields:
        meta.containers.append("container tags")


def _read_gif(data: bytes, meta: Metadata) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if comment := image.info.get("comment"):
            meta.add("gif/Comment", "Comment", comment)
        if xmp := image.info.get("xmp"):
            meta.containers.append("XMP")
            meta.add("gif/XMP", "XMP", xmp, "xmp")


# ---------------------------------------------------------------- PDF
_PDF_INFO_KEY = re.compile(rb"/(AIGC|Producer|Creator|Subject|Keywords)\s*([(<])")


def pdf_string(data: bytes, pos: int, opener: bytes) -> tuple[bytes, int]:
    """Parse a PDF literal `( ... )` or hex `< ... >` string starting after its opener; returns (bytes, end)."""
    if opener == b"<":
        close = data.find(b">", pos)
        if close < 0:
            raise MetadataError("unterminated PDF hex string")
        digits = re.sub(rb"\s", b"", data[pos:close])
        return bytes.fromhex((digits + b"0" * (len(digits) & 1)).decode("ascii")), close + 1
    out = bytearray()
    depth = 1
    escapes = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}
    while pos < len(data):
        char = data[pos]
        if char == 0x5C and pos + 1 < len(data):  # backslash
            nxt = data[pos + 1]
            if 0x30 <= nxt <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", data[pos + 1:pos + 4]).group()
                out.append(int(digits, 8) & 0xFF)
                pos += 1 + len(digits)
                continue
            out += escapes.get(nxt, b"" if nxt in (0x0A, 0x0D) else bytes([nxt]))
            pos += 2
            continue
        if char == 0x28:
            depth += 1
        elif char == 0x29:
            depth -= 1
            if depth == 0:
                return bytes(out), pos + 1
        out.append(char)
        pos += 1
    raise MetadataError("unterminated PDF literal string")


def decode_pdf_text(raw: bytes) -> str | bytes:
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", "replace")
    return raw


def _read_pdf(data: bytes, meta: Metadata) -> None:
    if not data.startswith(b"%PDF"):
        raise MetadataError("not a PDF (no %PDF header)")
    for match in _PDF_INFO_KEY.finditer(data):
        key = match.group(1).decode()
        try:
            raw, _ = pdf_string(data, match.end(), match.group(2))
        except (MetadataError, ValueError) as exc:
            meta.errors.append(f"pdf/Info:{key}: {exc}")
            continue
        meta.add(f"pdf/Info:{key}", key, decode_pdf_text(raw))
    start = data.find(b"<x:xmpmeta")
    while start >= 0:   # uncompressed XMP metadata streams; find() keeps this linear in the file size
        end = data.find(b"</x:xmpmeta>", start)
        if end < 0:
            break
        meta.containers.append("XMP")
        meta.add("pdf/Metadata:XMP", "XMP", data[start:end + len(b"</x:xmpmeta>")], "xmp")
        start = data.find(b"<x:xmpmeta", end)


# ---------------------------------------------------------------- text and Markdown
MAX_FRONT_MATTER_CHARS = 64 * 1024


def _read_text(data: bytes, meta: Metadata) -> None:
    try:
        text, _ = decode_text_bytes(data)
    except UnicodeDecodeError as exc:
        raise MetadataError(f"text is neither UTF-8, UTF-16 nor GB 18030 ({exc.reason})") from None
    front = FRONT_MATTER.match(text)
    if front:
        meta.containers.append("front matter")
        _read_front_matter(front.group(1), meta)
    trailer = text_trailer_line(text)
    if trailer:
        meta.add("text/trailer", "AIGC", trailer[1])


def _read_front_matter(block: str, meta: Metadata) -> None:
    import json

    import yaml

    if len(block) > MAX_FRONT_MATTER_CHARS:
        meta.errors.append(f"text/front-matter: {len(block)} characters; over {MAX_FRONT_MATTER_CHARS}, not parsed")
        return
    try:
        parsed = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        meta.errors.append(f"text/front-matter: not valid YAML ({str(exc).splitlines()[0]})")
        return
    if not isinstance(parsed, dict):
        return
    for key, value in parsed.items():
        if not isinstance(key, str):
            continue
        if key == "AIGC" and isinstance(value, dict):
            # block-style YAML mapping: re-serialize so the label parser sees one form
            meta.add("text/front-matter:AIGC", key, json.dumps({"AIGC": value}, default=str))
        elif key.lower() == "aigc":
            meta.add("text/front-matter:" + key, key, value if isinstance(value, str) else json.dumps(value, default=str))
        elif isinstance(value, str):
            meta.add(f"text/front-matter:{key}", key, value)


_READERS = {
    "jpeg": _read_jpeg, "png": _read_png, "webp": _read_webp, "gif": _read_gif,
    "mp4": _read_mp4, "mov": _read_mp4, "m4a": _read_mp4,
    "mkv": _read_av_tags, "webm": _read_av_tags, "avi": _read_av_tags,
    "wav": _read_wav, "mp3": _read_mp3, "flac": _read_vorbis, "ogg": _read_vorbis, "opus": _read_vorbis,
    "pdf": _read_pdf, "text": _read_text,
}
