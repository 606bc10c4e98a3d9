"""Trust-and-safety records end to end: scan -> case -> bank + refutation -> re-upload match; complaints and appeals
with deadlines; app review; consent; the audit chain under direct tampering. SQLite always; PostgreSQL as well when
DETECTOR_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image
from sqlalchemy import create_engine, func, select, text

from detector.config import PROJECT_ROOT, ScanConfig
from detector.records import cli as records_cli
from detector.records.api import Records
from detector.records.common import RecordsError
from detector.records.db import open_database
from detector.records.tables import BankEntry, Case, Consent, Evidence, Refutation
from detector.scan import Scanner

from conftest import write_video

POSTGRES_URL_FILE = PROJECT_ROOT / "var" / "ci" / "postgres.url"     # written by .ci/services.d/postgres.sh
POSTGRES_SCHEMA = "records_tests"          # our own schema: other test modules share the database
ADMIN, REVIEWER, SECOND = "ada", "rui", "mei"
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
USCC = "91440300708461136T"


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request, tmp_path_factory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('records') / 'records.db'}"
    url = os.environ.get("DETECTOR_TEST_POSTGRES_URL")
    if not url and POSTGRES_URL_FILE.is_file():
        url = POSTGRES_URL_FILE.read_text().strip()
    if not url:
        pytest.skip("no PostgreSQL: set DETECTOR_TEST_POSTGRES_URL or run .ci/services.d/postgres.sh")
    engine = create_engine(url)
    with engine.begin() as conn:            # a fresh schema per run
        conn.execute(text(f"DROP SCHEMA IF EXISTS {POSTGRES_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {POSTGRES_SCHEMA}"))
    engine.dispose()
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{POSTGRES_SCHEMA}"


@pytest.fixture(scope="module")
def clock(db_url) -> Clock:
    return Clock(START)                      # one per database: each backend's run starts at the same time


@pytest.fixture(scope="module")
def records(db_url, clock) -> Records:
    records = Records(open_database(db_url), clock=clock)
    records.add_reviewer({"name": ADMIN, "role": "admin"})
    records.add_reviewer({"actor": ADMIN, "name": REVIEWER, "role": "reviewer"})
    records.add_reviewer({"actor": ADMIN, "name": SECOND, "role": "reviewer"})
    records.create_bank({"actor": ADMIN, "name": "rumors", "description": "confirmed synthetic rumors"})
    return records


@pytest.fixture(scope="module")
def scanner(records, tmp_path_factory) -> Scanner:
    # no weights in this models dir: detectors answer not_applicable, so the test exercises the records, fast
    config = ScanConfig(models_dir=tmp_path_factory.mktemp("no-models"))
    return Scanner(config, hooks=[records.bank_matcher()])


def count(records: Records, table) -> int:
    with records.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture(scope="module")
def face_images(dev_data) -> dict[str, Path]:
    root = dev_data / "face"
    return {"rumor": root / "deforgify/fake/fake_1.jpg", "other": root / "deforgify/fake/fake_100.jpg",
            "person_a1": root / "deepface-tests/real/img5.jpg", "person_a2": root / "deepface-tests/real/img6.jpg",
            "person_b": root / "deepface-tests/real/img13.jpg"}


# ---- 1-3: scan, case, bank with refutation, re-upload ------------------------------------------------------------

def test_scan_case_bank_refutation_and_reupload_match(records, scanner, face_images, tmp_path, clock):
    original = face_images["rumor"]
    first = scanner.scan([original])[0]
    assert first.sha256 and first.matches == []

    case = records.open_case({"actor": REVIEWER, "result": first.to_dict()}, data=original.read_bytes())
    assert case["status"] == "open" and case["signals"] == ["pdq"] and case["sha256"] == first.sha256
    assert {e["kind"] for e in case["evidence"]} >= {"file_hash", "result"}

    refutation = {"title": "This photo is AI-generated", "text": "No such person exists; the image was generated.",
                  "link": "https://example.org/refutations/1"}
    with pytest.raises(RecordsError) as refused:        # banking is an admin action
        records.decide_case({"actor": REVIEWER, "case_id": case["id"], "decision": "confirmed_synthetic",
                             "bank": "rumors", "refutation": refutation})
    assert refused.value.status == 403
    decided = records.decide_case({"actor": ADMIN, "case_id": case["id"], "decision": "confirmed_synthetic",
                                   "bank": "rumors", "labels": ["rumor", "confirmed deepfake"],
                                   "refutation": refutation, "notes": "matches a known generator"})
    assert decided["status"] == "decided" and decided["refutation"]["title"] == refutation["title"]
    assert decided["banked"] and "refutation" in decided["action"]

    # re-upload: resized to 60 % and re-encoded at JPEG quality 60; and a mirrored copy
    image = Image.open(original)
    resized = tmp_path / "reupload.jpg"
    resized.write_bytes(jpeg(image.resize((image.width * 3 // 5, image.height * 3 // 5), Image.LANCZOS), 60))
    mirrored = tmp_path / "mirrored.jpg"
    mirrored.write_bytes(jpeg(image.transpose(Image.FLIP_LEFT_RIGHT)))
    clock.advance(hours=1)
    again, flipped, unrelated = scanner.scan([resized, mirrored, face_images["other"]])
    assert again.sha256 != first.sha256
    [match] = again.matches
    assert match["bank"] == "rumors" and match["case_id"] == case["id"] and match["signal_type"] == "pdq"
    assert match["labels"] == ["rumor", "confirmed deepfake"] and match["distance"] <= 31
    assert match["refutation"]["title"] == refutation["title"]
    assert match["refutation"]["link"] == refutation["link"]
    assert flipped.matches and flipped.matches[0]["transformed"] is True
    assert unrelated.matches == []
    assert '"refutation"' in again.to_json()

    report = records.regulator_report({"actor": REVIEWER, "start": "2026-03-01", "end": "2026-04-01"})
    [row] = [r for r in report["cases"] if r["case_id"] == case["id"]]
    assert row["decision"] == "confirmed_synthetic" and row["banks"] == ["rumors"]
    assert row["reuploads_in_period"] == 2 and row["refutation_link"] == refutation["link"]
    assert report["summary"]["refutations"] >= 1
    rows = list(csv.DictReader(io.StringIO(records.regulator_report_csv({"actor": REVIEWER, "start": "2026-03-01",
                                                                         "end": "2026-04-01"}))))
    assert any(r["case_id"] == str(case["id"]) and r["reuploads_in_period"] == "2" for r in rows)
    later = records.regulator_report({"actor": REVIEWER, "start": "2026-05-01", "end": "2026-06-01"})
    assert all(r["case_id"] != case["id"] for r in later["cases"])


def test_heatmap_evidence_is_kept_and_oversized_evidence_leaves_nothing(records, face_images):
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(png, "PNG")
    result = {"path": "x.jpg", "modality": "image", "verdict": "synthetic", "score": 0.97,
              "evidence": {"heatmap": "data:image/png;base64," + __import__("base64").b64encode(
                  png.getvalue()).decode()},
              "provenance": {"implicit_label": None, "category": "suspected"}}
    case = records.open_case({"actor": REVIEWER, "result": result, "title": "manual upload"})
    kinds = sorted(e["kind"] for e in case["evidence"])
    assert kinds == ["heatmap", "provenance", "result"]
    heatmap_id = [e for e in case["evidence"] if e["kind"] == "heatmap"][0]["id"]
    media_type, content = records.evidence({"actor": REVIEWER, "case_id": case["id"], "evidence_id": heatmap_id})
    assert media_type == "image/png" and content == png.getvalue()
    with pytest.raises(RecordsError) as anonymous:             # cases are for reviewers, and reading is audited
        records.get_case({"case_id": case["id"]})
    assert anonymous.value.status == 401
    assert records.audit_entries({"limit": 1})["entries"][0]["action"] == "case.evidence_view"

    cases_before, evidence_before = count(records, Case), count(records, Evidence)
    huge = b"\x89PNG\r\n\x1a\n" + bytes(11 * 1024 * 1024)
    with pytest.raises(RecordsError) as too_big:
        records.open_case({"actor": REVIEWER, "title": "with a huge heatmap"}, heatmaps=[("big.png", huge)])
    assert too_big.value.status == 413
    assert (count(records, Case), count(records, Evidence)) == (cases_before, evidence_before)
    with pytest.raises(RecordsError) as not_png:
        records.add_evidence({"actor": REVIEWER, "case_id": case["id"], "kind": "heatmap", "name": "x.png"}, b"GIF89a")
    assert not_png.value.status == 400


def test_failed_decision_rolls_back_refutation(records, face_images):
    case = records.open_case({"actor": REVIEWER, "title": "another rumor"},
                             data=face_images["other"].read_bytes())
    refutations = count(records, Refutation)
    with pytest.raises(RecordsError) as unknown:
        records.decide_case({"actor": ADMIN, "case_id": case["id"], "decision": "confirmed_synthetic",
                             "bank": "no-such-bank", "refutation": {"title": "t", "text": "x"}})
    assert unknown.value.status == 404
    assert count(records, Refutation) == refutations
    assert records.get_case({"actor": REVIEWER, "case_id": case["id"]})["status"] == "open"


# ---- banks: other signal types, CSV exchange, bad input, 100k lookup ----------------------------------------------

def textured_frame(index: int, width: int, height: int) -> np.ndarray:
    """Smooth random texture that drifts a little per frame (PDQ needs detail; codecs keep smooth detail)."""
    rng = np.random.default_rng(7)
    base = rng.random((height // 8 + 2, width // 8 + 2, 3))
    big = np.asarray(Image.fromarray((base * 255).astype(np.uint8)).resize((width + 64, height + 64),
                                                                            Image.BICUBIC))
    shift = index * 2
    return np.ascontiguousarray(big[shift // 2:shift // 2 + height, shift:shift + width])


def test_video_audio_and_text_reuploads_match(records, dev_data, tmp_path):
    records.create_bank({"actor": ADMIN, "name": "media", "description": "video, audio and text"})
    video = write_video(tmp_path / "clip.mp4", "libx264", frames=24, fps=8, size=(192, 128), draw=textured_frame)
    smaller = write_video(tmp_path / "smaller.webm", "libvpx", "webm", frames=24, fps=8, size=(128, 86),
                          draw=lambda i, w, h: np.asarray(Image.fromarray(textured_frame(i, 192, 128)).resize((w, h))))
    speech = sorted((dev_data / "speech/librispeech/real").glob("*.flac"))
    reencoded_speech = tmp_path / "speech.mp3"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(speech[0]), "-ar", "22050", "-af", "volume=0.7",
                    "-b:a", "48k", str(reencoded_speech)], check=True)
    texts = sorted((dev_data / "text/fast-detect-gpt/fake").glob("*.txt"))
    story = texts[0].read_text(encoding="utf-8")
    words = story.split()
    words[3], words[10] = words[3].upper(), "indeed"
    edited = " ".join(words).replace(".", " !") + "  Share this!"

    for path in (video, speech[0], texts[0]):
        records.add_to_bank({"actor": ADMIN, "bank": "media", "labels": "rumor", **records.hash_media(path.read_bytes())})
    assert {b["name"]: b["by_signal_type"] for b in records.list_banks()["banks"]}["media"] == {
        "vpdq": 1, "chromaprint": 1, "text_simhash": 1}

    def matches(data: bytes) -> list[dict]:
        return records.lookup(records.hash_media(data))["matches"]

    [video_match] = matches(smaller.read_bytes())
    assert video_match["signal_type"] == "vpdq" and video_match["query_share"] >= 0.5
    [audio_match] = matches(reencoded_speech.read_bytes())
    assert audio_match["signal_type"] == "chromaprint" and audio_match["distance"] < 0.2
    [text_match] = matches(edited.encode())
    assert text_match["signal_type"] == "text_simhash"
    assert matches(speech[1].read_bytes()) == []
    assert matches(texts[1].read_bytes()) == []


def test_a_banked_voice_is_found_in_a_video_soundtrack_and_silence_matches_nothing(records, dev_data, tmp_path):
    records.create_bank({"actor": ADMIN, "name": "voices", "description": "audio reused in videos"})
    speech = sorted((dev_data / "speech/librispeech/real").glob("*.flac"))[:2]
    voices = [soundfile.read(path, dtype="float32")[0] for path in speech]
    silence = np.zeros(16000 * 20, np.float32)

    def wav(name: str, samples: np.ndarray) -> bytes:
        soundfile.write(tmp_path / name, samples, 16000)
        return (tmp_path / name).read_bytes()

    def signal_types(data: bytes) -> list[str]:
        return [s["signal_type"] for s in records.hash_media(data)["signals"]]

    def matches(data: bytes) -> list[dict]:         # this bank's: the module's other banks hold similar frames
        return [m for m in records.lookup(records.hash_media(data))["matches"] if m["bank"] == "voices"]

    # two different recordings that both end in long silence are not the same audio
    padded = [wav(f"padded{i}.wav", np.concatenate([voice, silence])) for i, voice in enumerate(voices)]
    records.add_to_bank({"actor": ADMIN, "bank": "voices", "labels": "cloned-voice", **records.hash_media(padded[0])})
    assert matches(padded[1]) == []
    assert signal_types(wav("silence.wav", silence)) == []

    # the banked voice under new pictures, louder and AAC-coded, is found through the video's soundtrack
    video = write_video(tmp_path / "dub.mp4", "libx264", frames=24, fps=8, size=(192, 128), draw=textured_frame,
                        audio=(voices[0] * 1.3).reshape(-1, 1))
    assert signal_types(video.read_bytes()) == ["vpdq", "chromaprint"]
    [found] = matches(video.read_bytes())
    assert found["signal_type"] == "chromaprint" and found["labels"] == ["cloned-voice"] and found["distance"] < 0.2

    # a silent soundtrack is not printed; another voice under the same kind of pictures matches nothing
    mute = write_video(tmp_path / "mute.mp4", "libx264", frames=24, fps=8, size=(192, 128), draw=textured_frame,
                       audio=silence.reshape(-1, 1))
    assert signal_types(mute.read_bytes()) == ["vpdq"]
    other = write_video(tmp_path / "other.mp4", "libx264", frames=24, fps=8, size=(192, 128), draw=textured_frame,
                        audio=voices[1].reshape(-1, 1))
    assert matches(other.read_bytes()) == []


def test_bank_bad_input_is_refused_without_partial_records(records):
    good = "f" * 64
    entries = count(records, BankEntry)
    cases = [
        ({"actor": ADMIN, "bank": "rumors", "signals": [{"signal_type": "pdq", "value": good},
                                                        {"signal_type": "pdq", "value": "xyz"}]}, 400),
        ({"actor": ADMIN, "bank": "rumors", "signals": [{"signal_type": "md5x", "value": good}]}, 400),
        ({"actor": ADMIN, "bank": "nope", "signals": [{"signal_type": "pdq", "value": good}]}, 404),
        ({"actor": REVIEWER, "bank": "rumors", "signals": [{"signal_type": "pdq", "value": good}]}, 403),
        ({"actor": "mallory", "bank": "rumors", "signals": [{"signal_type": "pdq", "value": good}]}, 403),
        ({"bank": "rumors", "signals": [{"signal_type": "pdq", "value": good}]}, 401),
    ]
    for payload, status in cases:
        with pytest.raises(RecordsError) as refused:
            records.add_to_bank(payload)
        assert refused.value.status == status, payload
    assert count(records, BankEntry) == entries
    records.add_to_bank({"actor": ADMIN, "bank": "rumors", "signals": [{"signal_type": "pdq", "value": good}]})
    with pytest.raises(RecordsError) as duplicate:
        records.add_to_bank({"actor": ADMIN, "bank": "rumors", "signals": [{"signal_type": "pdq", "value": good}]})
    assert duplicate.value.status == 409
    with pytest.raises(RecordsError) as duplicate_bank:
        records.create_bank({"actor": ADMIN, "name": "rumors"})
    assert duplicate_bank.value.status == 409
    with pytest.raises(RecordsError) as malformed:
        records.lookup({"signals": [{"signal_type": "pdq", "value": "0" * 63}]})
    assert malformed.value.status == 400


def test_csv_export_import_roundtrip_and_atomic_import(records):
    records.create_bank({"actor": ADMIN, "name": "exchange"})
    rng = np.random.default_rng(1)
    hashes = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(5)]
    lines = ["signal_type,signal,labels"] + [f'pdq,{h},"rumor,imported"' for h in hashes]
    assert records.import_bank({"actor": ADMIN, "bank": "exchange", "csv": "\n".join(lines)})["added"] == 5
    exported = records.export_bank("exchange")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["signal"] for r in rows] == hashes and rows[0]["labels"] == "rumor,imported"
    assert records.import_bank({"actor": ADMIN, "bank": "exchange", "csv": exported}) == {
        "bank": "exchange", "added": 0, "skipped": 5}

    before = count(records, BankEntry)
    broken = "\n".join(["signal_type,signal,labels", f"pdq,{'1' * 64},x", "pdq,not-a-hash,x"])
    with pytest.raises(RecordsError) as refused:
        records.import_bank({"actor": ADMIN, "bank": "exchange", "csv": broken})
    assert refused.value.status == 400 and "line 3" in refused.value.message
    assert count(records, BankEntry) == before
    with pytest.raises(RecordsError):
        records.import_bank({"actor": ADMIN, "bank": "exchange", "csv": "hash\n" + hashes[0]})


def test_lookup_among_100k_hashes(records):
    rng = np.random.default_rng(2)
    hashes = rng.integers(0, 256, (100_000, 32), dtype=np.uint8)
    rows = ["signal_type,signal,labels"] + [f"pdq,{h.tobytes().hex()}," for h in hashes]
    records.create_bank({"actor": ADMIN, "name": "bulk"})
    assert records.import_bank({"actor": ADMIN, "bank": "bulk", "csv": "\n".join(rows)})["added"] == 100_000

    def near(row: int, flips: int) -> str:
        bits = np.unpackbits(hashes[row])
        bits[rng.choice(256, flips, replace=False)] ^= 1
        return np.packbits(bits).tobytes().hex()

    for row, flips in ((7, 0), (77_777, 20), (99_999, 31)):
        found = records.lookup({"signals": [{"signal_type": "pdq", "value": near(row, flips)}]})["matches"]
        assert [(m["bank"], m["distance"]) for m in found] == [("bulk", flips)]
    assert records.lookup({"signals": [{"signal_type": "pdq", "value": near(5, 40)}]})["matches"] == []
    # the index agrees with brute force on random queries near and far
    words = hashes.view(np.uint64)
    for _ in range(50):
        query = near(int(rng.integers(100_000)), int(rng.integers(20, 45)))
        distances = np.bitwise_count(words ^ np.frombuffer(bytes.fromhex(query), np.uint64)).sum(axis=1)
        found = records.lookup({"signals": [{"signal_type": "pdq", "value": query}]})["matches"]
        assert sorted(m["distance"] for m in found) == sorted(distances[distances <= 31].tolist())


# ---- 4: complaints, deadlines, appeals -----------------------------------------------------------------------

def test_complaint_deadlines_overdue_and_status_by_token(records, clock):
    records.set_procedure({"actor": ADMIN, "category": "misinformation", "description": "false synthetic claims",
                           "acknowledge_within_hours": 24, "resolve_within_hours": 72})
    filed = records.file_complaint({"category": "misinformation", "contact": "li@example.cn",
                                    "message": "This video of the mayor is fake.", "subject": "https://v.example/1"})
    with pytest.raises(RecordsError) as duplicate:
        records.file_complaint({"category": "misinformation", "contact": "LI@example.cn",
                                "message": "This video of the mayor is fake. ", "subject": "https://v.example/1"})
    assert duplicate.value.status == 409
    for bad in ({"category": "nope", "contact": "a@b.cn", "message": "x"},
                {"category": "other", "contact": "not a contact", "message": "x"},
                {"category": "other", "contact": "a@b.cn", "message": ""}):
        with pytest.raises(RecordsError) as refused:
            records.file_complaint(bad)
        assert refused.value.status == 400

    assert records.complaint_status(filed["token"])["overdue"] == []
    clock.advance(hours=25)                                    # the acknowledgement deadline passes
    status = records.complaint_status(filed["token"])
    assert status["overdue"] == ["acknowledgement"] and "contact" not in status
    assert filed["id"] in [c["id"] for c in records.overdue_complaints()["overdue"]]
    assert records.metrics()["complaints_ack_overdue"] >= 1

    records.update_complaint({"actor": REVIEWER, "complaint_id": filed["id"], "status": "acknowledged"})
    assert records.complaint_status(filed["token"])["overdue"] == []
    clock.advance(hours=48)                                    # 73 h: the resolution deadline passes
    assert records.complaint_status(filed["token"])["overdue"] == ["resolution"]
    assert records.metrics()["complaints_resolution_overdue"] >= 1
    with pytest.raises(RecordsError):                          # a resolution needs a note
        records.update_complaint({"actor": REVIEWER, "complaint_id": filed["id"], "status": "resolved"})
    done = records.update_complaint({"actor": REVIEWER, "complaint_id": filed["id"], "status": "resolved",
                                     "note": "Confirmed synthetic; removed and refuted."})
    assert done["status"] == "resolved" and done["overdue"] == []
    assert [h["to"] for h in done["history"]] == ["received", "acknowledged", "resolved"]
    assert filed["id"] not in [c["id"] for c in records.overdue_complaints()["overdue"]]
    with pytest.raises(RecordsError) as closed:
        records.update_complaint({"actor": REVIEWER, "complaint_id": filed["id"], "status": "acknowledged"})
    assert closed.value.status == 409


def test_appeal_reopens_case_for_a_different_reviewer_and_withdraws_bank_entries(records, scanner, tmp_path):
    image = Image.fromarray(textured_frame(3, 256, 256))
    path = tmp_path / "appealed.jpg"
    path.write_bytes(jpeg(image))
    case = records.open_case({"actor": REVIEWER, "title": "appealed"}, data=path.read_bytes())
    records.add_reviewer({"actor": ADMIN, "name": "boss2", "role": "admin"})
    records.decide_case({"actor": ADMIN, "case_id": case["id"], "decision": "confirmed_synthetic", "bank": "rumors",
                         "labels": "rumor"})
    assert scanner.scan([path])[0].matches

    with pytest.raises(RecordsError):                           # an appeal must name a case
        records.file_complaint({"category": "appeal", "contact": "+86 138 0000 0000", "message": "It is real"})
    appeal = records.file_complaint({"category": "appeal", "contact": "+86 138 0000 0000",
                                     "message": "This is my own photo, not generated.", "case_id": case["id"]})
    reopened = records.get_case({"actor": REVIEWER, "case_id": case["id"]})
    assert reopened["status"] == "reopened" and reopened["excluded_reviewers"] == [ADMIN]
    with pytest.raises(RecordsError) as same:
        records.decide_case({"actor": ADMIN, "case_id": case["id"], "decision": "authentic"})
    assert same.value.status == 403
    decided = records.decide_case({"actor": "boss2", "case_id": case["id"], "decision": "authentic",
                                   "notes": "camera original provided"})
    assert decided["decision"] == "authentic" and decided["banked"] == []
    assert scanner.scan([path])[0].matches == []
    records.update_complaint({"actor": SECOND, "complaint_id": appeal["id"], "status": "resolved",
                              "note": "Appeal upheld."})


# ---- 5: app review -----------------------------------------------------------------------------------------------

def test_app_review_report(records, tmp_path):
    from detector.provenance import write_label

    plain = tmp_path / "sample.txt"
    plain.write_text("【AI生成】\n这是一段由模型生成的示例文本，用于应用商店审核。\n", encoding="utf-8")
    labelled = tmp_path / "labelled.txt"
    write_label(plain, labelled, propagator="", propagate_id="", label="1", producer=f"0011{USCC}A01",
                produce_id="app-sample-1")
    unlabelled_png = tmp_path / "out.png"
    Image.fromarray(textured_frame(1, 64, 64)).save(unlabelled_png)
    identity = {"name": "FaceFun", "package_id": "com.example.facefun", "version": "2.1.0",
                "filing_number": "网信算备110108123456789012345号", "security_assessment": "SA-2026-0042"}

    report = records.submit_app_review({"submitter": "store-review-bot", "identity": identity},
                                       [("labelled.txt", labelled.read_bytes())])
    assert report["verdict"] == "pass", report
    statuses = {r["requirement"]: r["status"] for r in report["requirements"]}
    assert statuses == {"identity": "pass", "filing_number": "pass", "security_assessment": "pass",
                        "implicit_label": "pass", "explicit_label": "pass"}
    evidence = report["requirements"][3]["evidence"]["labelled.txt"]["evidence"]
    assert evidence["fields"]["Label"] == "1"
    assert records.get_app_review(report["review_id"]) == report

    with pytest.raises(RecordsError) as duplicate:
        records.submit_app_review({"submitter": "store-review-bot", "identity": identity},
                                  [("labelled.txt", labelled.read_bytes())])
    assert duplicate.value.status == 409

    failing = records.submit_app_review(
        {"submitter": "dev", "identity": {**identity, "version": "2.2.0", "filing_number": "pending"}},
        [("out.png", unlabelled_png.read_bytes()), ("plain.txt", plain.read_bytes())])
    statuses = {r["requirement"]: r["status"] for r in failing["requirements"]}
    assert failing["verdict"] == "fail"
    assert statuses["filing_number"] == "fail" and statuses["implicit_label"] == "fail"
    checks = {s["name"]: s["checks"] for s in failing["samples"]}
    assert checks["out.png"]["explicit_label"]["status"] == "not_checked"
    assert checks["plain.txt"]["explicit_label"]["status"] == "pass"
    with pytest.raises(RecordsError) as no_samples:
        records.submit_app_review({"submitter": "dev", "identity": {**identity, "version": "9"}}, [])
    assert no_samples.value.status == 400


# ---- consent -----------------------------------------------------------------------------------------------------

def test_face_consent_registry(records, face_images, clock, tmp_path):
    registered = records.register_consent(
        {"subject": "Person A", "kind": "face", "scope": "face swap in the FaceFun app",
         "expires_at": (clock.now + timedelta(days=30)).isoformat()}, face_images["person_a1"].read_bytes())
    assert registered["active"] and registered["model"] == "dlib_face_recognition_resnet_model_v1"
    with records.engine.connect() as conn:
        stored = conn.execute(select(Consent.embedding).where(Consent.id == registered["id"])).scalar_one()
    assert len(stored) == 128 * 4                             # the embedding only, never the photo

    same_person = records.check_consent(face_images["person_a2"].read_bytes())
    assert same_person["all_consented"] and same_person["identities"][0]["consents"][0]["subject"] == "Person A"
    assert not records.check_consent(face_images["person_b"].read_bytes())["all_consented"]

    # through the scan hook (the consent check normally runs for synthetic verdicts only)
    config = ScanConfig(models_dir=tmp_path / "no-models")
    hooked = Scanner(config, hooks=[records.consent_checker(verdicts=("not_applicable",))])
    result = hooked.scan([face_images["person_a2"]])[0]
    assert result.evidence["consent"]["all_consented"] is True

    with pytest.raises(RecordsError) as no_face:
        records.register_consent({"subject": "x", "kind": "face", "scope": "s"},
                                 jpeg(Image.new("RGB", (64, 64), (90, 90, 90))))
    assert no_face.value.status == 400
    clock.advance(days=31)                                    # expired consent no longer counts
    assert not records.check_consent(face_images["person_a2"].read_bytes())["all_consented"]
    records.withdraw_consent(registered["token"])
    with pytest.raises(RecordsError) as gone:
        records.consent_status(registered["token"])
    assert gone.value.status == 404


def test_voice_consent_registry(records, dev_data, tmp_path):
    speech = sorted((dev_data / "speech/librispeech/real").glob("*.flac"))
    samples, rate = soundfile.read(speech[0], dtype="float32")
    half = len(samples) // 2
    first, second = tmp_path / "first.wav", tmp_path / "second.wav"
    soundfile.write(first, samples[:half], rate)
    soundfile.write(second, samples[half:], rate)
    registered = records.register_consent({"subject": "Speaker 1", "kind": "voice", "scope": "voice clone"},
                                          first.read_bytes())
    assert registered["model"] == "resemblyzer_ge2e_v1"
    assert records.check_consent(second.read_bytes())["all_consented"]
    assert not records.check_consent(speech[2].read_bytes())["all_consented"]

    # the same voice as a video's soundtrack (the frames show no face): checked when the soundtrack's verdict is
    # one the hook acts on, whatever the frames' verdict
    assert rate == 16_000
    video = write_video(tmp_path / "talk.mp4", "libx264", "mp4", frames=int(2 * (len(samples) - half) / rate), fps=2,
                        audio=samples[half:, None])
    checked = records.check_consent(video.read_bytes())
    assert checked["all_consented"] and [i["kind"] for i in checked["identities"]] == ["voice"]
    hook = records.consent_checker(verdicts=("synthetic", "authentic", "uncertain"))
    scanned = Scanner(hooks=[hook]).scan([video])[0]
    assert scanned.verdict == "not_applicable" and scanned.evidence["soundtrack"]["verdict"] != "not_applicable"
    assert scanned.evidence["consent"]["all_consented"] is True
    silent = write_video(tmp_path / "silent.mp4", "libx264", "mp4", frames=8, fps=2)
    with pytest.raises(RecordsError) as no_voice:
        records.register_consent({"subject": "x", "kind": "voice", "scope": "s"}, silent.read_bytes())
    assert no_voice.value.status == 400 and "speech" in no_voice.value.message

    records.withdraw_consent(registered["token"])
    assert not records.check_consent(second.read_bytes())["all_consented"]


# ---- 6: the audit chain ------------------------------------------------------------------------------------------

def test_concurrent_writers_keep_one_unbroken_chain(records):
    from concurrent.futures import ThreadPoolExecutor

    before = records.verify_audit()
    assert before["ok"]

    def file_and_acknowledge(n: int) -> None:
        for i in range(5):
            filed = records.file_complaint({"category": "other", "contact": f"user{n}@example.cn",
                                            "message": f"complaint {i} from thread {n}"})
            records.update_complaint({"actor": REVIEWER, "complaint_id": filed["id"], "status": "acknowledged"})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(file_and_acknowledge, range(4)))
    after = records.verify_audit()
    assert after["ok"] and after["entries"] == before["entries"] + 4 * 5 * 2


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="detector")
    records_cli.register_cli(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_audit_chain_detects_edits_and_deletions(records, db_url):
    assert records.verify_audit()["ok"] is True
    assert run_cli("audit", "verify", "--database", db_url) == 0
    entries = records.verify_audit()["entries"]
    assert entries > 20

    with records.engine.begin() as conn:
        original = conn.execute(text("SELECT details FROM audit_log WHERE id = 5")).scalar_one()
        conn.execute(text("UPDATE audit_log SET details = '{\"role\":\"admin\"}' WHERE id = 5"))
    report = records.verify_audit()
    assert not report["ok"] and any("entry 5" in p and "edited" in p for p in report["problems"])
    assert run_cli("audit", "verify", "--database", db_url) == 1
    with records.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET details = :d WHERE id = 5"), {"d": original})
    assert records.verify_audit()["ok"]

    with records.engine.begin() as conn:
        row = conn.execute(text("SELECT * FROM audit_log WHERE id = 7")).mappings().one()
        conn.execute(text("DELETE FROM audit_log WHERE id = 7"))
    report = records.verify_audit()
    assert not report["ok"] and any("7..7" in p for p in report["problems"])
    with records.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (id, at, actor, action, target, details, prev_hash, entry_hash) "
                          "VALUES (:id, :at, :actor, :action, :target, :details, :prev_hash, :entry_hash)"), dict(row))
    assert records.verify_audit()["ok"]

    with records.engine.begin() as conn:                       # dropping the newest entry: caught by the head
        last = conn.execute(text("SELECT max(id) FROM audit_log")).scalar_one()
        conn.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": last})
    report = records.verify_audit()
    assert not report["ok"] and any("head" in p for p in report["problems"])


def test_retention_and_pruning_are_admin_only_and_audited(tmp_path):
    clock = Clock(START)
    records = Records(open_database(f"sqlite:///{tmp_path / 'prune.db'}"), clock=clock)
    records.add_reviewer({"name": ADMIN, "role": "admin"})
    records.add_reviewer({"actor": ADMIN, "name": REVIEWER, "role": "reviewer"})
    records.create_bank({"actor": ADMIN, "name": "old"})
    with pytest.raises(RecordsError) as not_admin:
        records.set_retention({"actor": REVIEWER, "days": 400})
    assert not_admin.value.status == 403
    with pytest.raises(RecordsError) as too_short:
        records.set_retention({"actor": ADMIN, "days": 30})
    assert too_short.value.status == 400
    with pytest.raises(RecordsError):
        records.prune_audit({"actor": REVIEWER})
    with pytest.raises(RecordsError) as lockout:
        records.update_reviewer({"actor": ADMIN, "name": ADMIN, "active": False})
    assert lockout.value.status == 409

    assert records.prune_audit({"actor": ADMIN})["removed"] == 0      # nothing is six months old yet
    clock.advance(days=200)
    records.create_bank({"actor": ADMIN, "name": "new"})
    pruned = records.prune_audit({"actor": ADMIN})
    assert pruned["removed"] == 4 and pruned["retention_days"] == 183
    report = records.verify_audit()
    assert report["ok"], report
    actions = [e["action"] for e in records.audit_entries({})["entries"]]
    assert actions == ["audit.prune", "bank.create"]
    assert run_cli("audit", "verify", "--database", f"sqlite:///{tmp_path / 'prune.db'}") == 0


# ---- the same flow through the command line ------------------------------------------------------------------

def test_cli_flow(tmp_path, face_images, capsys, monkeypatch):
    import json

    monkeypatch.setenv("DETECTOR_MODELS_DIR", str(tmp_path / "no-models"))
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def cli_json(*argv: str) -> dict:
        assert run_cli(*argv, "--database", url) == 0
        return json.loads(capsys.readouterr().out)

    cli_json("reviewer", "add", ADMIN, "--role", "admin")
    cli_json("bank", "create", "rumors", "--actor", ADMIN)
    case = cli_json("case", "open", str(face_images["rumor"]), "--actor", ADMIN)
    assert case["source"] == "scan" and case["results"]["verdict"] == "not_applicable"
    cli_json("case", "decide", str(case["id"]), "confirmed_synthetic", "--actor", ADMIN, "--bank", "rumors",
             "--labels", "rumor", "--refutation-title", "Fake photo", "--refutation-text", "Generated image.")
    image = Image.open(face_images["rumor"])
    reupload = tmp_path / "small.jpg"
    reupload.write_bytes(jpeg(image.resize((image.width // 2, image.height // 2)), 70))
    [match] = cli_json("bank", "lookup", str(reupload))[str(reupload)]
    assert match["case_id"] == case["id"] and match["refutation"]["title"] == "Fake photo"

    exported = tmp_path / "rumors.csv"
    assert run_cli("bank", "export", "rumors", "-o", str(exported), "--database", url) == 0
    assert exported.read_text().splitlines()[1].startswith("pdq,")
    filed = cli_json("complaint", "file", "--category", "other", "--contact", "a@b.cn", "--message", "hello")
    assert cli_json("complaint", "status", filed["token"])["status"] == "received"
    assert run_cli("bank", "create", "x", "--actor", "nobody", "--database", url) == 1
    assert "not an active reviewer" in capsys.readouterr().err
    report = cli_json("case", "report", "--start", "2020-01-01", "--end", "2100-01-01", "--actor", ADMIN)
    assert [row["case_id"] for row in report["cases"]] == [case["id"]]
    cli_json("reviewer", "add", "temp", "--actor", ADMIN)
    cli_json("reviewer", "set", "temp", "--deactivate", "--actor", ADMIN)
    assert run_cli("case", "show", str(case["id"]), "--actor", "temp", "--database", url) == 1
    assert "not an active reviewer" in capsys.readouterr().err
    assert cli_json("audit", "verify")["ok"] is True


def test_opening_the_store_creates_every_table_whoever_opens_it_first(tmp_path):
    """A fresh process that imports only the storage layer (as `detector serve keys create` did) still creates the
    records, audit and service tables: one store, one schema, whichever command touches it first."""
    import sys

    database = tmp_path / "first.db"
    code = ("import sys; from sqlalchemy import inspect; from detector.records.db import open_database; "
            "print(sorted(inspect(open_database(sys.argv[1])).get_table_names()))")
    shown = subprocess.run([sys.executable, "-c", code, f"sqlite:///{database}"], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")}).stdout
    for table in ("banks", "bank_entries", "cases", "complaints", "consents", "audit_log", "jobs", "api_keys",
                  "request_log"):
        assert f"'{table}'" in shown, (table, shown)
