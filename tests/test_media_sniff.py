"""Sniffing judges content by its bytes (and a container probe), never by its name."""

from __future__ import annotations

import shutil
import struct

import pytest
from conftest import text_pdf

from detector.config import Limits
from detector.media import AudioMedia, ImageMedia, MediaError, MediaInput, TextMedia, decode, read_bytes, sniff
from detector.media import pdf as pdf_module
from detector.media.sniff import SNIFF_BYTES

EXPECTED = {
    "jpeg_exif_rotated": ("image", "jpeg"), "png_rgba": ("image", "png"), "jpeg_cmyk": ("image", "jpeg"),
    "png_grey16": ("image", "png"), "gif": ("image", "gif"), "bmp": ("image", "bmp"), "webp": ("image", "webp"),
    "mp4_h264": ("video", "mp4"), "mp4_mpeg4_with_audio": ("video", "mp4"), "mov": ("video", "mov"),
    "mkv": ("video", "mkv"), "webm": ("video", "webm"), "avi": ("video", "avi"),
    "mpeg_ts": ("video", "mpegts"), "m2ts": ("video", "mpegts"), "mpeg_ps": ("video", "mpeg"),
    "wav_8bit": ("audio", "wav"), "wav_6ch": ("audio", "wav"), "flac": ("audio", "flac"),
    "ogg_vorbis": ("audio", "ogg"), "opus": ("audio", "opus"), "mp3": ("audio", "mp3"), "m4a": ("audio", "m4a"),
    "aac_adts": ("audio", "aac"),
    # Containers that usually hold video but here hold only audio are audio.
    "mp4_audio_only": ("audio", "m4a"), "webm_audio_only": ("audio", "webm"), "mpeg_ts_audio_only": ("audio", "mpegts"),
    "text_utf8": ("text", "text"), "text_utf16": ("text", "text"), "text_gb18030": ("text", "text"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sniff_from_head_with_path_and_from_whole_bytes(sample_media, name):
    path = sample_media[name]
    data = path.read_bytes()
    by_head = sniff(data[:SNIFF_BYTES], path)
    by_bytes = sniff(data)
    assert (by_head.modality, by_head.format) == EXPECTED[name]
    assert (by_bytes.modality, by_bytes.format) == EXPECTED[name]


def test_extension_is_ignored(sample_media, tmp_path):
    disguised_png = tmp_path / "song.mp3"
    shutil.copy(sample_media["png"], disguised_png)
    disguised_wav = tmp_path / "photo.jpg"
    shutil.copy(sample_media["wav_8bit"], disguised_wav)
    disguised_text = tmp_path / "movie.mp4"
    shutil.copy(sample_media["text_utf8"], disguised_text)
    assert isinstance(decode(MediaInput.from_path(disguised_png), Limits()), ImageMedia)
    assert isinstance(decode(MediaInput.from_path(disguised_wav), Limits()), AudioMedia)
    assert isinstance(decode(MediaInput.from_path(disguised_text), Limits()), TextMedia)


def test_mp4_head_without_its_index_still_sniffs_as_video(sample_media):
    # PyAV writes the moov index at the end: the first bytes alone cannot be probed, so the ftyp brand decides.
    head = sample_media["mp4_h264"].read_bytes()[:64]
    assert (sniff(head).modality, sniff(head).format) == ("video", "mp4")


def test_id3_tagged_mp3(sample_media):
    frames = sample_media["mp3"].read_bytes()
    tag_body = b"TIT2" + struct.pack(">I", 6) + b"\x00\x00" + b"\x03title"
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0, len(tag_body)]) + tag_body
    assert sniff(tag + frames).format == "mp3"
    assert isinstance(decode(MediaInput.from_bytes(tag + frames), Limits()), AudioMedia)


def test_empty_input():
    with pytest.raises(MediaError) as error:
        sniff(b"")
    assert error.value.code == "empty"


@pytest.mark.parametrize("data, words", [
    (b"II*\x00" + bytes(100), "TIFF"),
    (b"PK\x03\x04" + bytes(100), "ZIP"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIF"),
    (bytes(range(256)) * 4, "unrecognised"),
    (b"\x47" + bytes(187) + b"\x47" + bytes(187) + b"\x48" + bytes(400), "unrecognised"),   # sync lost: not MPEG-TS
    ("text in UTF-16 without a byte order mark".encode("utf-16-le"), "unrecognised"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><text>a drawing</text></svg>', "SVG"),
])
def test_unsupported_content_says_what_it_is(data, words):
    with pytest.raises(MediaError) as error:
        sniff(data)
    assert error.value.code == "unsupported"
    assert words in error.value.message


def test_pdf_text_layer_is_decoded_page_by_page(tmp_path):
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(text_pdf(["First page (intro)\nsecond line", "Second page"]))
    assert sniff(pdf.read_bytes()).format == "pdf"
    media = decode(MediaInput.from_path(pdf), Limits())
    assert media.modality == "text" and media.encoding == "pdf"
    assert media.text == "First page (intro)\nsecond line\n\nSecond page"


@pytest.mark.parametrize("content, code, words", [
    (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", "corrupt", "not a readable PDF"),
    (text_pdf(["a page of text"])[:300], "corrupt", "not a readable PDF"),
    (text_pdf(["", ""]), "empty", "no text layer"),
    (text_pdf(["secret text"], password="pw"), "unsupported", "encrypted"),
])
def test_unreadable_pdfs_get_clear_errors(content, code, words):
    with pytest.raises(MediaError) as error:
        decode(MediaInput("doc.pdf", data=content), Limits())
    assert error.value.code == code and words in error.value.message


def test_oversized_pdfs_are_refused(monkeypatch):
    with pytest.raises(MediaError) as text_over:
        decode(MediaInput("doc.pdf", data=text_pdf(["a page of text", "more text"])), Limits(max_text_chars=20))
    assert text_over.value.code == "too_large" and "characters" in text_over.value.message
    monkeypatch.setattr(pdf_module, "MAX_PDF_PAGES", 2)
    with pytest.raises(MediaError) as pages_over:
        decode(MediaInput("doc.pdf", data=text_pdf(["one", "two", "three"])), Limits())
    assert pages_over.value.code == "too_large" and "3 pages" in pages_over.value.message


def test_text_that_starts_like_a_bmp_is_text():
    assert sniff(b"BMW and Audi are German car makers.\n").modality == "text"


def test_read_bytes_checks_size_before_reading(sample_media):
    path = sample_media["png"]
    assert read_bytes(MediaInput.from_path(path), Limits()) == path.read_bytes()
    with pytest.raises(MediaError) as error:
        read_bytes(MediaInput.from_path(path), Limits(max_bytes=10))
    assert error.value.code == "too_large"
    assert read_bytes(MediaInput.from_text("héllo"), Limits()) == "héllo".encode("utf-8")


def test_prose_that_begins_like_a_binary_format_is_text():
    for prose in (b"MZ is the postcode area of Mzuzu.\n", b"FORMAL NOTICE: the meeting moved.\n"):
        assert sniff(prose).modality == "text"
    with pytest.raises(MediaError) as error:
        sniff(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00")
    assert "Windows executable" in error.value.message


def test_text_full_of_joiners_and_direction_marks_is_text():
    family = "👨\u200d👩\u200d👧 " * 50
    arabic = "\u200fمرحبا بالعالم\u200f\n" * 20
    for text in (family, arabic):
        assert sniff(text.encode("utf-8")).modality == "text"
