"""Art. 6 write-back and explicit labels: every writer round-trips, keeps producer fields, never leaves a second copy,
and leaves pixels and samples untouched."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pypdf
import pytest
import soundfile as sf
from conftest import text_pdf, tone, write_video
from PIL import Image, PngImagePlugin

from detector.cli import main as cli_main
from detector.config import Limits
from detector.media import MediaInput, decode
from detector.provenance import (LabelWriteError, add_audio_cue, add_image_label, add_text_label, add_video_label,
                                 inspect, write_label)
from detector.provenance.explicit import audio_cue_present, check_text
from detector.provenance.writers import sniff_format
from detector.provenance.xmp import xmp_with_label

PRODUCER = "001191440300708461136TA01"
LABEL = {"Label": "1", "ContentProducer": PRODUCER, "ProduceID": "gen-42", "ReservedCode1": "sig0",
         "ContentPropagator": "", "PropagateID": "", "ReservedCode2": ""}
WRAPPED = json.dumps({"AIGC": LABEL})
RNG = np.random.default_rng(7)
PICTURE = (RNG.random((64, 96, 3)) * 255).astype(np.uint8)
TONE = (0.3 * np.sin(2 * np.pi * 330 * np.arange(16000) / 16000)).astype(np.float32)


def make_video(path: Path, seconds: float = 1.0, size=(64, 48), fps: int = 10) -> None:
    def draw(index: int, width: int, height: int) -> np.ndarray:
        picture = np.full((height, width, 3), (index * 20) % 255, np.uint8)
        picture[:, : width // 2] = PICTURE[:height, : width // 2]
        return picture

    write_video(path, "libx264", frames=int(seconds * fps), fps=fps, size=size, audio=tone(seconds, 16000),
                draw=draw)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sources")
    made = {}
    image = Image.fromarray(PICTURE)
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>keep me</dc:title>'
           b"</rdf:Description></rdf:RDF></x:xmpmeta>")
    made["jpeg"] = root / "a.jpg"
    image.save(made["jpeg"], quality=90, xmp=xmp)
    made["webp"] = root / "a.webp"
    image.save(made["webp"], lossless=True)
    made["webp-alpha"] = root / "alpha.webp"
    Image.fromarray(np.dstack([PICTURE, PICTURE[:, :, 0]])).save(made["webp-alpha"], quality=80)
    made["png"] = root / "a.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "keep me too")
    image.save(made["png"], pnginfo=info)
    for fmt in ("wav", "flac", "mp3"):
        made[fmt] = root / f"a.{fmt}"
        sf.write(made[fmt], TONE, 16000)
    made["ogg"] = root / "a.ogg"
    sf.write(made["ogg"], TONE, 16000, format="OGG", subtype="VORBIS")
    made["mp4"] = root / "a.mp4"
    make_video(made["mp4"])
    made["mkv"] = root / "a.mkv"
    make_video(made["mkv"])
    made["text"] = root / "a.txt"
    made["text"].write_text("第一段文字。\nSecond paragraph.\n", encoding="utf-8")
    made["pdf"] = root / "a.pdf"
    made["pdf"].write_bytes(text_pdf(["A report (page one)", "page two"], metadata={"/Title": "keep me"}))
    made["markdown"] = root / "a.md"
    made["markdown"].write_text("---\ntitle: Post\n---\n# Heading\n\nBody text.\n", encoding="utf-8")
    made["html"] = root / "a.html"
    made["html"].write_text("<!DOCTYPE html><html><head><title>Report</title><script>var a = 1;</script></head><body>"
                            "<article><h1>A report</h1><p>The council met on Tuesday and approved the library "
                            "budget after residents spoke about opening hours and road repairs.</p></article>"
                            "</body></html>\n", encoding="utf-8")
    return made


def media_signature(path: Path, fmt: str):
    """What must not change: decoded pixels, decoded samples, or every compressed packet of every stream."""
    if fmt in ("jpeg", "png", "webp", "webp-alpha"):
        with Image.open(path) as image:
            return image.mode, np.asarray(image).tobytes()
    if fmt in ("wav", "flac", "mp3", "ogg"):
        return sf.read(path, dtype="float32")[0].tobytes()
    if fmt in ("mp4", "mkv"):
        with av.open(str(path)) as container:
            packets = [(p.stream.type, bytes(p)) for p in container.demux() if p.size]
        return {kind: [data for k, data in packets if k == kind] for kind in ("video", "audio")}
    if fmt == "pdf":
        reader = pypdf.PdfReader(path)
        return [page.extract_text() for page in reader.pages], reader.metadata.get("/Title")
    return decode(MediaInput.from_path(path), Limits()).text       # text: what a detector reads, label left out


def sniffed(fmt: str) -> str:
    return {"markdown": "text", "html": "text", "webp-alpha": "webp"}.get(fmt, fmt)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "webp-alpha", "mp4", "mkv", "mp3", "wav", "flac", "ogg", "pdf",
                                 "text", "markdown", "html"])
def test_write_read_round_trip_keeps_media_identical(sources, tmp_path, fmt):
    src = sources[fmt]
    first = tmp_path / f"first{src.suffix}"
    result = write_label(src, first, propagator="PLAT01", propagate_id="up-1", label="1", producer=PRODUCER,
                         produce_id="gen-42")
    findings = inspect(first.read_bytes(), sniffed(fmt))
    assert findings["labels_found"] == 1, findings
    label = findings["implicit_label"]
    assert label["valid"], label["errors"]
    assert label["fields"]["ContentPropagator"] == "PLAT01" and label["fields"]["ContentProducer"] == PRODUCER
    assert label["location"] == result["location"]
    assert media_signature(first, fmt) == media_signature(src, fmt)

    # A second platform propagates: producer fields and Label stay, propagator fields change, still one copy.
    second = tmp_path / f"second{src.suffix}"
    write_label(first, second, propagator="PLAT02", propagate_id="up-2")
    findings = inspect(second.read_bytes(), sniffed(fmt))
    assert findings["labels_found"] == 1
    fields = findings["implicit_label"]["fields"]
    assert (fields["Label"], fields["ContentProducer"], fields["ProduceID"]) == ("1", PRODUCER, "gen-42")
    assert (fields["ContentPropagator"], fields["PropagateID"]) == ("PLAT02", "up-2")
    assert media_signature(second, fmt) == media_signature(src, fmt)


def test_text_round_trip_only_adds_the_label(sources, tmp_path):
    out = tmp_path / "t.txt"
    write_label(sources["text"], out, propagator="P", propagate_id="1", label="2")
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[:2] == sources["text"].read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[2])["AIGC"]["Label"] == "2"


def test_markdown_front_matter_keeps_other_keys(sources, tmp_path):
    out = tmp_path / "t.md"
    write_label(sources["markdown"], out, propagator="P", propagate_id="1", label="1")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("---\ntitle: Post\nAIGC: {") and text.endswith("# Heading\n\nBody text.\n")


@pytest.mark.parametrize("encoding, bom", [("utf-16-le", b"\xff\xfe"), ("gb18030", b""), ("utf-8", b"\xef\xbb\xbf")])
def test_text_encoding_and_bom_are_kept(tmp_path, encoding, bom):
    src = tmp_path / "in.txt"
    src.write_bytes(bom + "人工智能的文本。\n".encode(encoding))
    out = tmp_path / "out.txt"
    write_label(src, out, propagator="P", propagate_id="1", label="3")
    data = out.read_bytes()
    assert data.startswith(bom + "人工智能的文本。\n".encode(encoding))
    assert inspect(data, "text")["implicit_label"]["valid"]


def test_existing_png_text_label_is_moved_into_xmp_not_copied(tmp_path):
    src = tmp_path / "in.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("AIGC", WRAPPED)
    Image.fromarray(PICTURE).save(src, pnginfo=info)
    out = tmp_path / "out.png"
    result = write_label(src, out, propagator="PLAT01", propagate_id="x")
    findings = inspect(out.read_bytes(), "png")
    assert findings["labels_found"] == 1 and "XML:com.adobe.xmp" in findings["implicit_label"]["location"]
    assert result["previous"]["ContentProducer"] == PRODUCER
    assert findings["implicit_label"]["fields"] == {**LABEL, "ContentPropagator": "PLAT01", "PropagateID": "x"}


def test_exif_user_comment_label_is_moved_not_copied(tmp_path):
    src = tmp_path / "in.jpg"
    exif = Image.Exif()
    exif[0x0131] = "CameraApp 1.0"
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00" + WRAPPED.encode()
    Image.fromarray(PICTURE).save(src, exif=exif, quality=90)
    out = tmp_path / "out.jpg"
    write_label(src, out, propagator="PLAT01", propagate_id="x")
    findings = inspect(out.read_bytes(), "jpeg")
    assert findings["labels_found"] == 1 and findings["implicit_label"]["location"].startswith("jpeg/APP1:XMP")
    assert Image.open(out).getexif()[0x0131] == "CameraApp 1.0", "the rest of EXIF is kept"
    assert media_signature(out, "jpeg") == media_signature(src, "jpeg")


def test_other_xmp_properties_and_png_text_are_kept(sources, tmp_path):
    jpeg = tmp_path / "o.jpg"
    write_label(sources["jpeg"], jpeg, propagator="P", propagate_id="1", label="1")
    assert b"<dc:title>keep me</dc:title>" in Image.open(jpeg).info["xmp"]
    png = tmp_path / "o.png"
    write_label(sources["png"], png, propagator="P", propagate_id="1", label="1")
    assert Image.open(png).text["Comment"] == "keep me too"


def test_misspelled_existing_label_is_written_back_correctly(tmp_path):
    fields = dict(LABEL)
    fields["ReserveCode1"] = fields.pop("ReservedCode1")
    src = tmp_path / "in.mp3"
    sf.write(src, TONE, 16000)
    from mutagen.id3 import ID3, TXXX

    tags = ID3()
    tags.add(TXXX(encoding=3, desc="AIGC", text=[json.dumps({"AIGC": fields})]))
    tags.save(src)
    assert not inspect(src.read_bytes(), "mp3")["implicit_label"]["valid"]
    out = tmp_path / "out.mp3"
    write_label(src, out, propagator="P", propagate_id="1")
    label = inspect(out.read_bytes(), "mp3")["implicit_label"]
    assert label["valid"] and label["fields"]["ReservedCode1"] == "sig0"


def test_write_refuses_without_a_label_value(sources, tmp_path):
    with pytest.raises(LabelWriteError, match="no label to propagate"):
        write_label(sources["png"], tmp_path / "x.png", propagator="P", propagate_id="1")
    assert not (tmp_path / "x.png").exists()


def test_write_refuses_illegal_propagator(sources, tmp_path):
    with pytest.raises(LabelWriteError, match="illegal characters"):
        write_label(sources["png"], tmp_path / "x.png", propagator="my platform", propagate_id="1", label="1")
    assert list(tmp_path.iterdir()) == []


def test_label_in_place(sources, tmp_path):
    path = tmp_path / "inplace.wav"
    path.write_bytes(sources["wav"].read_bytes())
    write_label(path, path, propagator="P", propagate_id="1", label="2")
    assert inspect(path.read_bytes(), "wav")["implicit_label"]["fields"]["Label"] == "2"
    assert media_signature(path, "wav") == media_signature(sources["wav"], "wav")


# ---------------------------------------------------------------- CLI
def test_cli_label_writes_and_reports(sources, tmp_path, capsys):
    out = tmp_path / "cli.flac"
    code = cli_main(["label", str(sources["flac"]), "--out", str(out), "--propagator", "PLAT9",
                     "--propagate-id", "abc", "--label", "3"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["label"]["Label"] == "3" and report["location"].endswith("AIGC")
    assert inspect(out.read_bytes(), "flac")["implicit_label"]["fields"]["ContentPropagator"] == "PLAT9"


def test_cli_label_error_is_one_line_and_exit_1(sources, tmp_path, capsys):
    code = cli_main(["label", str(sources["png"]), "--out", str(tmp_path / "x.png"), "--propagator", "bad value",
                     "--propagate-id", "1", "--label", "1"])
    assert code == 1 and "illegal characters" in capsys.readouterr().err


def test_cli_provenance_shows_category(sources, tmp_path, capsys):
    out = tmp_path / "p.png"
    write_label(sources["png"], out, propagator="P", propagate_id="1", label="1")
    assert cli_main(["provenance", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["category"] == "is" and report["display"] == "AI-generated"


# ---------------------------------------------------------------- explicit labels
def test_image_corner_label_is_tall_enough_and_in_the_corner(tmp_path):
    src = tmp_path / "big.png"
    Image.fromarray(np.full((300, 500, 3), 128, np.uint8)).save(src)
    out = tmp_path / "labelled.png"
    info = add_image_label(src, out)
    assert info["text_height"] >= 0.05 * 300
    changed = np.any(np.asarray(Image.open(out)) != 128, axis=2)
    rows, cols = np.nonzero(changed)
    assert rows.min() > 300 * 0.7 and cols.min() > 500 * 0.3, "only the bottom-right corner changes"
    white = np.all(np.asarray(Image.open(out)) > 240, axis=2)
    text_rows = np.nonzero(white.any(axis=1))[0]
    assert text_rows.max() - text_rows.min() + 1 >= 0.05 * 300, "drawn text is at least 5% of the shorter side"


def test_cli_explicit_image_label_keeps_the_implicit_label(tmp_path, capsys):
    src = tmp_path / "in.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("AIGC", WRAPPED)
    Image.fromarray(PICTURE).save(src, pnginfo=info)
    out = tmp_path / "out.png"
    assert cli_main(["label", str(src), "--out", str(out), "--propagator", "P", "--propagate-id", "1",
                     "--explicit"]) == 0
    findings = inspect(out.read_bytes(), "png")
    assert findings["labels_found"] == 1
    assert findings["implicit_label"]["fields"]["ContentProducer"] == PRODUCER


def test_video_label_covers_the_first_two_seconds_only(tmp_path):
    src = tmp_path / "v.mp4"
    make_video(src, seconds=3.0, size=(96, 64), fps=5)
    out = tmp_path / "labelled.mp4"
    info = add_video_label(src, out)
    assert info["labelled_frames"] == 10
    assert sniff_format(out) == "mp4", "an MP4 stays an MP4"

    def frames(path):
        with av.open(str(path)) as container:
            return [(f.time, f.to_ndarray(format="rgb24").astype(int)) for f in container.decode(video=0)]

    before, after = frames(src), frames(out)
    assert len(before) == len(after) == 15
    corner = (slice(-8, None), slice(-24, None))   # where a 5%-of-64-px label sits
    for (time, a), (_, b) in zip(before, after):
        difference = np.abs(a[corner] - b[corner]).mean()
        assert (difference > 20) if time < 2.0 else (difference < 8), (time, difference)
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1, "the audio stream is carried over"


def test_audio_cue_is_written_and_recognized(sources, tmp_path):
    out = tmp_path / "cue.wav"
    info = add_audio_cue(sources["wav"], out)
    samples, rate = sf.read(out, dtype="float32")
    assert audio_cue_present(samples, rate)["found"]
    assert not audio_cue_present(*sf.read(sources["wav"], dtype="float32"))["found"]
    cue_samples = int(info["seconds"] * rate)
    assert np.array_equal(samples[cue_samples:], sf.read(sources["wav"], dtype="float32")[0]), "content unchanged"


def test_text_prefix_is_added_once(sources, tmp_path):
    out = tmp_path / "p.md"
    assert add_text_label(sources["markdown"], out)["added"]
    text = out.read_text(encoding="utf-8")
    assert text.startswith("---\ntitle: Post\n---\n【AI生成】\n")
    assert check_text(text)["found"]
    again = tmp_path / "again.md"
    assert not add_text_label(out, again)["added"]


def test_a_labelled_web_page_is_still_a_web_page(sources, tmp_path):
    # both labels on a page: the notice before its markup is what a browser shows first, the implicit label after it
    noticed = tmp_path / "noticed.html"
    add_text_label(sources["html"], noticed)
    labelled = tmp_path / "labelled.html"
    write_label(noticed, labelled, propagator="P", propagate_id="1", label="1")
    media = decode(MediaInput.from_path(labelled), Limits())
    assert media.encoding == "html"
    assert media.text == "【AI生成】\n\n" + media_signature(sources["html"], "html")
    assert check_text(media.text)["position"] == "start"
    assert inspect(labelled.read_bytes(), "text")["implicit_label"]["valid"]


@pytest.mark.parametrize("text, found", [
    ("【AI生成】今天的新闻。", True),
    ("今天的新闻……本内容由人工智能生成。", True),
    ("AI-generated: a summary of the meeting.", True),
    ("A summary of the meeting. (Generated by AI)", True),
    ("Meeting notes about AI generated art in the middle of a long sentence that keeps going for a while, "
     "long enough that the phrase is far from both ends of this text, which is what matters here.", False),
    ("普通的文章，没有任何标识。", False),
    ("AI生成：会议纪要", True),
    ("AI生成的图片越来越多，平台需要标识。", False),
    ("AI-generated images are everywhere now, and platforms must label them clearly.", False),
    ("The whole picture, they said, is AI generated", False),
    ("会议纪要。\n\nAI生成", True),
])
def test_explicit_text_notice_variants(text, found):
    assert check_text(text)["found"] is found


def test_pdf_label_replaces_an_xmp_copy_and_the_text_notice_is_checked(tmp_path):
    from pypdf.generic import DecodedStreamObject, NameObject

    source = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(text_pdf(["AI-generated: a meeting summary."]))))
    xmp = DecodedStreamObject()
    xmp.set_data(xmp_with_label(None, json.dumps(LABEL)))
    source.root_object[NameObject("/Metadata")] = source._add_object(xmp)
    src = tmp_path / "xmp.pdf"
    with src.open("wb") as handle:
        source.write(handle)
    before = inspect(src.read_bytes(), "pdf")
    assert before["labels_found"] == 1 and before["implicit_label"]["location"].startswith("pdf/Metadata:XMP")

    out = tmp_path / "info.pdf"
    write_label(src, out, propagator="PLAT01", propagate_id="up-1")
    findings = inspect(out.read_bytes(), "pdf", decode(MediaInput.from_path(out), Limits()))
    assert findings["labels_found"] == 1 and findings["implicit_label"]["location"] == "pdf/Info:AIGC"
    assert findings["implicit_label"]["fields"]["ProduceID"] == "gen-42"
    assert findings["explicit_label"]["checked"] and findings["explicit_label"]["found"]


def test_existing_label_with_a_huge_field_is_not_propagated(tmp_path):
    src = tmp_path / "in.flac"
    sf.write(src, TONE, 16000)
    import mutagen

    audio = mutagen.File(src)
    audio["AIGC"] = json.dumps({"AIGC": {**LABEL, "ProduceID": "A" * 1_000_000}})
    audio.save()
    with pytest.raises(LabelWriteError, match="ProduceID has illegal characters"):
        write_label(src, tmp_path / "out.flac", propagator="P", propagate_id="1")


def test_scan_json_shows_label_validation_and_category(sources, tmp_path, capsys):
    labelled = tmp_path / "scan.png"
    write_label(sources["png"], labelled, propagator="PLAT01", propagate_id="s-1", label="1", producer=PRODUCER,
                produce_id="gen-42")
    assert cli_main(["scan", "--json", str(labelled)]) == 0
    provenance = json.loads(capsys.readouterr().out.splitlines()[0])["provenance"]
    assert provenance["implicit_label"]["valid"] and provenance["implicit_label"]["producer"]["uscc_check_ok"]
    assert (provenance["category"], provenance["display"]) == ("is", "AI-generated")


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_exiftool_reads_the_xmp_we_write(sources, tmp_path, fmt):
    out = tmp_path / f"x{sources[fmt].suffix}"
    result = write_label(sources[fmt], out, propagator="PLAT01", propagate_id="x-1", label="1")
    report = subprocess.run(["exiftool", "-j", "-validate", "-XMP:all", str(sources[fmt]), str(out)], check=True,
                            capture_output=True)
    before, after = json.loads(report.stdout)
    assert json.loads(after["Aigc"]) == result["label"]   # exiftool's name for an undeclared property
    assert after["Validate"] == before["Validate"], "writing the label adds no structural warning"


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("fmt", ["mp4", "mkv", "mp3", "flac", "ogg"])
def test_ffprobe_reads_the_tag_we_write(sources, tmp_path, fmt):
    out = tmp_path / f"x{sources[fmt].suffix}"
    result = write_label(sources[fmt], out, propagator="PLAT01", propagate_id="x-1", label="1")
    report = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries", "format_tags:stream_tags",
                             str(out)], check=True, capture_output=True)
    parsed = json.loads(report.stdout)
    tags = {k.lower(): v for k, v in parsed["format"].get("tags", {}).items()}
    for stream in parsed.get("streams", []):
        tags.update({k.lower(): v for k, v in stream.get("tags", {}).items()})
    assert json.loads(tags["aigc"]) == {"AIGC": result["label"]}
