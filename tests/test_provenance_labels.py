"""AIGC implicit labels: validation rules, both wrappings, every reader (with third-party writers where installed),
and hostile metadata that must give clear errors, never exceptions."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from detector.provenance import inspect
from detector.provenance.aigc import label_from_json, label_from_xmp_value, parse_content_producer, validate
from detector.provenance.containers import read_metadata
from detector.provenance.implicit import scan_labels

USCC = "91440300708461136T"   # a real registered code: its check character is right
LABEL = {"Label": "1", "ContentProducer": f"0011{USCC}A01", "ProduceID": "img-2025-0001", "ReservedCode1": "",
         "ContentPropagator": "", "PropagateID": "", "ReservedCode2": ""}
WRAPPED = json.dumps({"AIGC": LABEL})
INNER = json.dumps(LABEL)
TC260 = "http://www.tc260.org.cn/ns/AIGC/1.0/"


def xmp_packet(body: str) -> bytes:
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description rdf:about="" xmlns:TC260="{TC260}">{body}</rdf:Description></rdf:RDF></x:xmpmeta>'
            ).encode()


def labels_in(data: bytes, fmt: str):
    return scan_labels(read_metadata(data, fmt)).labels


# ---------------------------------------------------------------- validation rules
def test_valid_label_passes_and_producer_is_parsed():
    parsed = label_from_json(WRAPPED, "test")
    assert parsed.valid, parsed.errors
    producer = parse_content_producer(parsed.fields["ContentProducer"])
    assert producer == {"fits_uscc_shape": True, "prefix": "001", "subject_type": "1", "uscc": USCC,
                        "uscc_check_ok": True, "suffix": "A01"}


def test_uscc_with_wrong_check_character_is_reported():
    producer = parse_content_producer(f"0011{USCC[:-1]}U")
    assert producer["fits_uscc_shape"] and producer["uscc_check_ok"] is False
    assert parse_content_producer("ACME-Generator")["fits_uscc_shape"] is False


def test_missing_and_extra_fields():
    fields = dict(LABEL)
    del fields["ProduceID"]
    fields["Model"] = "x"
    errors = validate(fields, "t", "json-wrapped").errors
    assert "missing field 'ProduceID'" in errors
    assert "unexpected field 'Model'" in errors


def test_misspellings_seen_in_the_wild_are_named():
    fields = dict(LABEL)
    fields["ReserveCode1"] = fields.pop("ReservedCode1")
    fields["Propagator"] = fields.pop("ContentPropagator")
    errors = validate(fields, "t", "json-wrapped").errors
    assert any("'ReserveCode1'" in e and "'ReservedCode1'" in e for e in errors)
    assert any("'Propagator'" in e and "'ContentPropagator'" in e for e in errors)
    assert not any(e.startswith("missing") for e in errors), "a misspelled field is not also reported missing"


def test_field_names_are_case_sensitive():
    fields = dict(LABEL)
    fields["label"] = fields.pop("Label")
    errors = validate(fields, "t", "json-wrapped").errors
    assert any("wrong case" in e and "'label'" in e for e in errors)


@pytest.mark.parametrize("value", ["0", "4", "1 ", "", "yes"])
def test_bad_label_values(value):
    errors = validate({**LABEL, "Label": value}, "t", "json-wrapped").errors
    assert any(e.startswith("Label is") or "illegal characters" in e for e in errors)


@pytest.mark.parametrize("value", ["has space", 'quo"te', "back\\slash", "中文", "tab\there"])
def test_illegal_characters(value):
    errors = validate({**LABEL, "ProduceID": value}, "t", "json-wrapped").errors
    assert any("ProduceID has illegal characters" in e for e in errors)


def test_non_string_value_is_an_error():
    errors = validate({**LABEL, "Label": 1}, "t", "json-wrapped").errors
    assert "field Label must be a string, found int" in errors


def test_xmp_property_holds_the_inner_object():
    parsed = label_from_xmp_value(INNER, "xmp")
    assert parsed.valid and parsed.wrapping == "xmp-property" and parsed.fields == LABEL


# ---------------------------------------------------------------- hostile metadata
@pytest.mark.parametrize("raw, message", [
    (b'{"AIGC": {"Label": "1",', "malformed JSON"),
    (b"[" * 5_000 + b"]" * 5_000, "nested more than"),
    (b'{"AIGC": {"Label": "\xff\xfe"}}', "not valid UTF-8"),
    (b'{"AIGC": "' + b"A" * 3_000_000 + b'"}', "characters; a label is at most"),
    (b'["AIGC"]', "not an object"),
])
def test_bad_label_json_gives_clear_errors(raw, message):
    png = png_with_chunks([(b"tEXt", b"AIGC\x00" + raw)])
    findings = inspect(png, "png")
    label = findings["implicit_label"]
    assert label is not None and not label["valid"]
    assert any(message in e for e in label["errors"]), label["errors"]
    json.dumps(findings)


def test_one_megabyte_label_field_is_a_validation_error():
    raw = json.dumps({"AIGC": {**LABEL, "ReservedCode2": "A" * 1_000_000}}).encode()
    findings = inspect(png_with_chunks([(b"iTXt", b"AIGC\x00\x00\x00\x00\x00" + raw)]), "png")
    errors = findings["implicit_label"]["errors"]
    assert any("ReservedCode2 is 1000000 characters" in e for e in errors), errors
    assert len(json.dumps(findings)) < 20_000, "the huge value is not echoed back"


def test_huge_xmp_packet_is_refused_clearly():
    padding = "<TC260:Note>" + "x" * (3 * 1024 * 1024) + "</TC260:Note>"
    packet = xmp_packet(f"<TC260:AIGC>{INNER}</TC260:AIGC>{padding}")
    findings = inspect(png_with_chunks([(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + packet)]), "png")
    assert any("packets over" in e for e in findings["implicit_label"]["errors"])


def test_xmp_with_entity_declarations_is_not_parsed():
    packet = b'<!DOCTYPE x [<!ENTITY a "aaaa">]>' + xmp_packet(f"<TC260:AIGC>{INNER}</TC260:AIGC>")
    findings = inspect(png_with_chunks([(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + packet)]), "png")
    assert any("DOCTYPE or ENTITY" in e for e in findings["implicit_label"]["errors"])


def test_zlib_bomb_in_ztxt_is_refused():
    bomb = zlib.compress(b"A" * (64 * 1024 * 1024), 9)
    findings = inspect(png_with_chunks([(b"zTXt", b"AIGC\x00\x00" + bomb)]), "png")
    assert any("inflates past" in e for e in findings["errors"]), findings["errors"]


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "mp4", "mkv", "wav", "mp3", "flac", "ogg", "pdf", "text", "gif"])
def test_garbage_never_raises(fmt):
    rng = np.random.default_rng(1)
    for data in (b"", rng.bytes(3000), b"\xff\xd8\xff\xe1\xff\xff" + rng.bytes(100), b"RIFF\xff\xff\xff\x7fWAVE"):
        findings = inspect(data, fmt)
        json.dumps(findings)


def test_two_labels_in_one_file_are_an_error():
    packet = xmp_packet(f"<TC260:AIGC>{INNER}</TC260:AIGC>")
    png = png_with_chunks([(b"tEXt", b"AIGC\x00" + WRAPPED.encode()),
                           (b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + packet)])
    findings = inspect(png, "png")
    assert findings["labels_found"] == 2
    assert any("2 labels in one file" in e for e in findings["implicit_label"]["errors"])


# ---------------------------------------------------------------- readers, on files built here
def png_with_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, "PNG")
    data = buffer.getvalue()
    extra = b"".join(len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
                     for kind, body in chunks)
    return data[:33] + extra + data[33:]   # after the 8-byte signature and the 25-byte IHDR chunk


def test_png_text_chunk_written_by_pillow():
    info = PngImagePlugin.PngInfo()
    info.add_text("AIGC", WRAPPED)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=info)
    (label,) = labels_in(buffer.getvalue(), "png")
    assert label.valid and label.location == "png/tEXt:AIGC" and label.fields == LABEL


def test_png_compressed_itxt_chunk():
    info = PngImagePlugin.PngInfo()
    info.add_itxt("AIGC", WRAPPED, zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=info)
    (label,) = labels_in(buffer.getvalue(), "png")
    assert label.valid and label.location == "png/iTXt:AIGC"


def test_exif_user_comment_written_by_pillow():
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00" + WRAPPED.encode()
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", exif=exif)
    (label,) = labels_in(buffer.getvalue(), "jpeg")
    assert label.valid and label.location.endswith("EXIF/UserComment")


def test_webp_xmp_attribute_form():
    packet = xmp_packet("").replace(b'rdf:about=""', f"rdf:about=\"\" TC260:AIGC='{INNER}'".encode())
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "WEBP", xmp=packet)
    (label,) = labels_in(buffer.getvalue(), "webp")
    assert label.valid and label.wrapping == "xmp-property"


def test_xmp_property_in_a_foreign_namespace_warns():
    packet = xmp_packet(f'<o:AIGC xmlns:o="http://example.com/other/">{INNER}</o:AIGC>')
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", xmp=packet)
    (label,) = labels_in(buffer.getvalue(), "jpeg")
    assert label.valid and any("namespace" in w for w in label.warnings)


def test_wav_list_info_chunk_built_by_hand(tmp_path):
    import soundfile as sf

    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(800, np.float32), 8000)
    data = path.read_bytes()
    value = WRAPPED.encode() + b"\x00"
    value += b"\x00" * (len(value) & 1)
    info = b"INFO" + b"AIGC" + len(value).to_bytes(4, "little") + value
    data = data + b"LIST" + len(info).to_bytes(4, "little") + info
    data = data[:4] + (len(data) - 8).to_bytes(4, "little") + data[8:]
    (label,) = labels_in(data, "wav")
    assert label.valid and label.location == "wav/LIST/INFO:AIGC"


def test_ogg_vorbis_comment_written_by_mutagen(tmp_path):
    import mutagen
    import soundfile as sf

    path = tmp_path / "a.ogg"
    sf.write(path, np.zeros(8000, np.float32), 8000, format="OGG", subtype="VORBIS")
    audio = mutagen.File(path)
    audio["aigc"] = WRAPPED    # Vorbis comment names are case-insensitive: no warning expected
    audio.save()
    (label,) = labels_in(path.read_bytes(), "ogg")
    assert label.valid and not label.warnings


def test_pdf_info_dictionary():
    escaped = WRAPPED.replace("(", "\\(").replace(")", "\\)")
    pdf = (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n2 0 obj\n<< /Producer (Test) /AIGC ("
           + escaped.encode() + b") >>\nendobj\ntrailer\n<< /Root 1 0 R /Info 2 0 R >>\n%%EOF\n")
    (label,) = labels_in(pdf, "pdf")
    assert label.valid and label.location == "pdf/Info:AIGC"


def test_pdf_hex_string_in_utf16():
    hex_value = ("feff" + WRAPPED.encode("utf-16-be").hex()).encode()
    pdf = b"%PDF-1.7\n2 0 obj\n<< /AIGC <" + hex_value + b"> >>\nendobj\n%%EOF\n"
    (label,) = labels_in(pdf, "pdf")
    assert label.valid


def test_markdown_front_matter_block_mapping():
    fields = "\n".join(f'  {k}: "{v}"' for k, v in LABEL.items())
    text = f"---\ntitle: A post\nAIGC:\n{fields}\n---\n# Body\n".encode()
    (label,) = labels_in(text, "text")
    assert label.valid and label.location == "text/front-matter:AIGC"


def test_plain_text_trailer():
    text = ("第一段。\n第二段。\n" + WRAPPED + "\n").encode("gb18030")
    (label,) = labels_in(text, "text")
    assert label.valid and label.location == "text/trailer"


# ---------------------------------------------------------------- third-party writers
needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")

EXIFTOOL_CONFIG = f"""
%Image::ExifTool::UserDefined = (
    'Image::ExifTool::XMP::Main' => {{
        TC260 => {{ SubDirectory => {{ TagTable => 'Image::ExifTool::UserDefined::TC260' }} }},
    }},
);
%Image::ExifTool::UserDefined::TC260 = (
    GROUPS => {{ 0 => 'XMP', 1 => 'XMP-TC260', 2 => 'Image' }},
    NAMESPACE => {{ 'TC260' => '{TC260}' }},
    WRITABLE => 'string',
    AIGC => {{ }},
);
1;
"""


@needs_exiftool
@pytest.mark.parametrize("suffix, fmt", [(".jpg", "jpeg"), (".png", "png")])
def test_xmp_written_by_exiftool(tmp_path, suffix, fmt):
    config = tmp_path / "tc260.config"
    config.write_text(EXIFTOOL_CONFIG)
    path = tmp_path / f"a{suffix}"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(path)
    subprocess.run(["exiftool", "-config", str(config), "-q", "-overwrite_original", f"-XMP-TC260:AIGC={INNER}",
                    str(path)], check=True)
    (label,) = labels_in(path.read_bytes(), fmt)
    assert label.valid and label.fields == LABEL and label.wrapping == "xmp-property"


@needs_ffmpeg
@pytest.mark.parametrize("suffix, fmt, extra", [
    (".mp4", "mp4", ["-movflags", "use_metadata_tags", "-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    (".mkv", "mkv", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
    (".mp3", "mp3", []),
    (".flac", "flac", []),
])
def test_metadata_written_by_ffmpeg(tmp_path, suffix, fmt, extra):
    path = tmp_path / f"a{suffix}"
    source = (["-f", "lavfi", "-i", "testsrc=size=32x32:rate=5:duration=0.4"] if fmt in ("mp4", "mkv")
              else ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.3"])
    subprocess.run(["ffmpeg", "-v", "error", "-y", *source, *extra, "-metadata", f"AIGC={WRAPPED}", str(path)],
                   check=True)
    (label,) = labels_in(path.read_bytes(), fmt)
    assert label.valid and label.fields == LABEL, label.errors


def test_mp4_freeform_atom_written_by_mutagen(tmp_path):
    from mutagen.mp4 import MP4, MP4FreeForm

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed (needed to make the MP4)")
    path = tmp_path / "a.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=0.3", "-c:a", "aac",
                    str(path)], check=True)
    audio = MP4(path)
    audio["----:com.apple.iTunes:AIGC"] = [MP4FreeForm(WRAPPED.encode())]
    audio.save()
    (label,) = labels_in(path.read_bytes(), "m4a")
    assert label.valid and "----:com.apple.iTunes:AIGC" in label.location


def test_object_with_thousands_of_fields_is_one_error():
    parsed = validate({f"k{i}": "v" for i in range(5000)}, "t", "json-wrapped")
    assert parsed.errors == ["label object has 5000 fields; a label has 7"]


def test_gif_comment_written_by_pillow():
    buffer = io.BytesIO()
    Image.new("P", (8, 8)).save(buffer, "GIF", comment=WRAPPED.encode())
    (label,) = labels_in(buffer.getvalue(), "gif")
    assert label.valid and label.location == "gif/Comment"


def test_nan_in_label_json_is_refused():
    findings = inspect(png_with_chunks([(b"tEXt", b'AIGC\x00{"AIGC": {"Label": NaN}}')]), "png")
    assert any("NaN" in e for e in findings["implicit_label"]["errors"])
    json.dumps(findings, allow_nan=False)


def test_pdf_xmp_metadata_stream():
    packet = xmp_packet(f"<TC260:AIGC>{INNER}</TC260:AIGC>")
    pdf = (b"%PDF-1.7\n3 0 obj\n<< /Type /Metadata /Subtype /XML /Length " + str(len(packet)).encode()
           + b" >>\nstream\n" + packet + b"\nendstream\nendobj\n%%EOF\n")
    (label,) = labels_in(pdf, "pdf")
    assert label.valid and label.location.startswith("pdf/Metadata:XMP")


def test_a_file_stuffed_with_labels_gives_a_bounded_report():
    png = png_with_chunks([(b"tEXt", b"AIGC\x00" + WRAPPED.encode())] * 5000)
    findings = inspect(png, "png")
    assert findings["labels_found"] == 5000
    assert len(findings["implicit_label"]["occurrences"]) == 20
    assert "5000 labels in one file (1 distinct)" in findings["implicit_label"]["errors"][-1]
