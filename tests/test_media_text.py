"""Text: encodings detected from bytes, normalized with paragraph breaks kept."""

from __future__ import annotations

import csv

import pytest

from detector.config import Limits
from detector.media import MediaError, MediaInput, TextMedia, decode

# NFKC folds full-width letters, digits and most punctuation (，→,) to ASCII; 。 has no compatibility form.
CHINESE = "深度伪造检测。\n\n第二段文字,全角ABC123。"


def _decode_text(inp: MediaInput, limits: Limits = Limits()) -> TextMedia:
    media = decode(inp, limits)
    assert isinstance(media, TextMedia)
    return media


def test_utf8_file_is_normalized_with_paragraphs_kept(sample_media):
    media = _decode_text(MediaInput.from_path(sample_media["text_utf8"]))
    assert media.encoding == "utf-8"
    assert media.text == "The first paragraph.\n\nThe second paragraph, with spaces.\nAnd a new line."


@pytest.mark.parametrize("name, encoding", [("text_utf16", "utf-16"), ("text_gb18030", "gb18030")])
def test_chinese_in_utf16_and_gb18030(sample_media, name, encoding):
    media = _decode_text(MediaInput.from_path(sample_media[name]))
    assert media.encoding == encoding
    assert media.text == CHINESE


@pytest.mark.parametrize("data, encoding", [
    ("\ufeffBOM-marked UTF-8 text".encode("utf-8"), "utf-8"),
    ("UTF-16 big-endian text".encode("utf-16-be"), None),
    (b"\xfe\xff" + "UTF-16 big-endian text".encode("utf-16-be"), "utf-16"),
    ("UTF-16 little-endian text: its BOM looks like an MP3 frame sync".encode("utf-16"), "utf-16"),
])
def test_byte_order_marks(data, encoding):
    if encoding is None:
        with pytest.raises(MediaError):                             # no BOM: not guessed
            decode(MediaInput.from_bytes(data), Limits())
        return
    media = _decode_text(MediaInput.from_bytes(data))
    assert media.encoding == encoding
    assert not media.text.startswith("\ufeff")


@pytest.mark.parametrize("raw, expected", [
    ("  a\t\t b  \r\n\r\n\r\n  c \rd ", "a b\n\nc\nd"),
    ("one\u2029two\u2028three", "one\n\ntwo\nthree"),
    ("x\u3000\u00a0y\x00z\x07", "x yz"),
    ("ﬁle №1 ①", "file No1 1"),
    ("p1\n \t \n\n\np2", "p1\n\np2"),
])
def test_normalization(raw, expected):
    assert _decode_text(MediaInput.from_text(raw)).text == expected


def test_direct_text():
    media = _decode_text(MediaInput.from_text("Typed by hand."))
    assert (media.text, media.encoding) == ("Typed by hand.", "direct")


@pytest.mark.parametrize("raw", ["", "   \n\t \r\n  ", "\x00\x01"])
def test_nothing_left_is_empty(raw):
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_text(raw), Limits())
    assert (error.value.code, error.value.message) == ("empty", "no text")


def test_over_the_character_limit():
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_text("x" * 11), Limits(max_text_chars=10))
    assert error.value.code == "too_large"
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_bytes(b"y" * 100), Limits(max_text_chars=10))
    assert error.value.code == "too_large"


def test_invalid_bytes_after_a_valid_head_are_corrupt():
    data = b"plain ascii " * 10_000 + b"\xff\xff\xff"              # the sniffed head is fine, the tail is not
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_bytes(data), Limits())
    assert (error.value.code, error.value.message) == ("corrupt", "not valid UTF-8/UTF-16/GB18030 text")


def test_dev_text_files_decode(dev_data):
    with open(dev_data / "labels.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["modality"] == "text"]
    for row in rows[:: max(1, len(rows) // 5)][:5]:
        media = _decode_text(MediaInput.from_path(dev_data / row["path"]))
        assert len(media.text) > 20
        assert "\r" not in media.text and "  " not in media.text


def test_long_file_whose_sniffed_head_splits_a_character(tmp_path):
    # 3-byte UTF-8 characters: the 64 KiB sniffing window ends inside one; the file is still text.
    path = tmp_path / "long.txt"
    path.write_bytes(("深度伪造" * 6000).encode("utf-8"))
    media = _decode_text(MediaInput.from_path(path))
    assert media.encoding == "utf-8" and len(media.text) == 24_000


ARTICLE = ["Council approves the library budget",
           "The city council met on Tuesday and approved next year's library budget after residents spoke about "
           "opening hours, the children's reading room and road repairs near the main branch.",
           "市议会周二开会，批准了明年的图书馆预算，居民们谈到了开放时间和儿童阅览室。"]


def _web_page(paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs[1:])
    return ("<!DOCTYPE html>\n<!-- a saved page -->\n<html><head><meta charset='gb18030'><title>News</title>"
            "<style>body { font-family: sans-serif }</style><script>var tracker = function () { return 1; };</script>"
            f"</head><body><article><h1>{paragraphs[0]}</h1>{body}</article>"
            "<script>window.analytics = true;</script></body></html>")


def test_a_web_page_is_judged_on_its_main_text():
    # the page in GB18030, as Chinese sites still serve it: the same text as the article written out plainly
    page = _decode_text(MediaInput.from_bytes(_web_page(ARTICLE).encode("gb18030")))
    plain = _decode_text(MediaInput.from_text("\n\n".join(ARTICLE)))
    assert page.encoding == "html"
    assert page.text == plain.text
    assert "<" not in page.text and "tracker" not in page.text and "font-family" not in page.text


@pytest.mark.parametrize("tail, limits, code", [
    (b"\xff\xfe\xfd</p></article></body></html>", Limits(), "corrupt"),   # invalid bytes past the sniffed head
    (b"</p></article></body></html>", Limits(max_text_chars=200), "too_large"),   # main text over the limit
])
def test_a_damaged_or_oversized_web_page_gets_a_clear_error(tail, limits, code):
    page = _web_page(ARTICLE[:2] + [f"{ARTICLE[1]} ({n})" for n in range(400)]).encode("utf-8")
    assert len(page) > 64 * 1024
    page = page[:page.rindex(b"</p></article>")] + tail
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_bytes(page), limits)
    assert error.value.code == code


def test_a_web_page_with_no_main_text_is_empty():
    page = "<html><head><script>var a = 1;</script><style>p { color: red }</style></head><body></body></html>"
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_bytes(page.encode()), Limits())
    assert error.value.code == "empty" and "no main text" in error.value.message


@pytest.mark.parametrize("prose", ["<html> opens every web page, and this sentence is about that tag, not a page.",
                                   "I drew <svg> shapes all day, and this sentence is about them, not a drawing."])
def test_prose_that_mentions_markup_stays_prose(prose):
    media = _decode_text(MediaInput.from_bytes(prose.encode()))
    assert media.encoding == "utf-8" and media.text == prose
