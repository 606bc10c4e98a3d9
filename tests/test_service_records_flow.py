"""The trust-and-safety flow (issue 7) through the running service's /v1/records routes: scan -> case -> bank with a
refutation -> a re-encoded re-upload matches on /v1/scan; complaints past their deadline; an app review; the audit
chain under direct tampering; and the refusals (unknown bank, malformed hash, no or unknown reviewer, no key)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image
from test_service_support import running_service, stop_service

from detector.records.api import open_records

ADMIN, REVIEWER = "flow-admin", "flow-reviewer"
MATCH_WAIT_SECONDS = 5                 # the scan worker's bank index reloads about once a second


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    yield running_service(tmp_path_factory.mktemp("service"))
    stop_service()


@pytest.fixture(scope="module")
def api(service):
    """The acme key; reviewers are created once on the service's database, as `detector records` would."""
    records = open_records(service.database_url)
    records.add_reviewer({"name": ADMIN, "role": "admin"})
    records.add_reviewer({"actor": ADMIN, "name": REVIEWER, "role": "reviewer"})
    records.engine.dispose()
    with service.client("acme") as http:
        yield http


def as_admin() -> dict:
    return {"X-Reviewer": ADMIN}


def as_reviewer() -> dict:
    return {"X-Reviewer": REVIEWER}


def jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


@pytest.fixture(scope="module")
def face(dev_data):
    path = dev_data / "face/deforgify/fake/fake_1.jpg"
    if not path.is_file():
        pytest.skip(f"dev data face image {path} is absent")
    return path.read_bytes()


def test_scan_case_bank_and_reupload_match_over_http(api, face):
    created = api.post("/v1/records/banks", json={"name": "flow-rumors", "description": "confirmed rumors"},
                       headers=as_admin())
    assert created.status_code == 200, created.text
    first = api.post("/v1/scan", files={"file": ("rumor.jpg", face, "image/jpeg")})
    assert first.status_code == 200, first.text
    result = first.json()
    assert result["matches"] == []

    opened = api.post("/v1/records/cases", files={"file": ("rumor.jpg", face, "image/jpeg")},
                      data={"result": json.dumps(result), "title": "viral photo"}, headers=as_reviewer())
    assert opened.status_code == 200, opened.text
    case = opened.json()
    assert case["status"] == "open" and case["sha256"] == result["sha256"] and case["signals"] == ["pdq"]
    assert api.get(f"/v1/records/cases/{case['id']}", headers=as_reviewer()).json()["id"] == case["id"]

    refutation = {"title": "This photo is AI-generated", "text": "No such person exists.",
                  "link": "https://example.org/refutations/flow"}
    decision = {"decision": "confirmed_synthetic", "bank": "flow-rumors", "labels": ["rumor"], "refutation": refutation}
    refused = api.post(f"/v1/records/cases/{case['id']}/decision", json=decision, headers=as_reviewer())
    assert refused.status_code == 403 and refused.json()["status"] == 403       # banking is for admins
    decided = api.post(f"/v1/records/cases/{case['id']}/decision", json=decision, headers=as_admin())
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "decided" and decided.json()["banked"]

    image = Image.open(io.BytesIO(face))
    reupload = jpeg(image.resize((image.width * 3 // 5, image.height * 3 // 5), Image.LANCZOS), 60)
    assert reupload != face
    deadline = time.monotonic() + MATCH_WAIT_SECONDS
    while True:
        again = api.post("/v1/scan", files={"file": ("reupload.jpg", reupload, "image/jpeg")}).json()
        if again["matches"] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    [match] = again["matches"]
    assert match["bank"] == "flow-rumors" and match["case_id"] == case["id"] and match["labels"] == ["rumor"]
    assert match["refutation"]["title"] == refutation["title"] and match["refutation"]["link"] == refutation["link"]

    looked_up = api.post("/v1/records/lookup", files={"file": ("reupload.jpg", reupload, "image/jpeg")})
    assert [m["case_id"] for m in looked_up.json()["matches"]] == [case["id"]]
    exported = api.get("/v1/records/banks/flow-rumors/export")
    assert exported.headers["content-type"].startswith("text/csv")
    assert [r["signal_type"] for r in csv.DictReader(io.StringIO(exported.text))] == ["pdq"]

    today = datetime.now(timezone.utc).date()
    period = {"start": str(today - timedelta(days=1)), "end": str(today + timedelta(days=1))}
    report = api.get("/v1/records/reports/regulator", params=period, headers=as_reviewer()).json()
    [row] = [r for r in report["cases"] if r["case_id"] == case["id"]]
    assert row["banks"] == ["flow-rumors"] and row["reuploads_in_period"] >= 1
    rows = csv.DictReader(io.StringIO(api.get("/v1/records/reports/regulator", params={**period, "format": "csv"},
                                              headers=as_reviewer()).text))
    assert str(case["id"]) in [r["case_id"] for r in rows]


def test_bank_csv_import_and_refusals(api):
    hashes = ["0f" * 32, "f0" * 32]
    csv_text = "signal_type,signal,labels\n" + "\n".join(f"pdq,{h},imported" for h in hashes)
    api.post("/v1/records/banks", json={"name": "flow-exchange"}, headers=as_admin()).raise_for_status()
    imported = api.post("/v1/records/banks/flow-exchange/import", content=csv_text,
                        headers={"Content-Type": "text/csv", **as_admin()})
    assert imported.json() == {"bank": "flow-exchange", "added": 2, "skipped": 0}, imported.text
    entry = {"signals": [{"signal_type": "pdq", "value": "1e" * 32}], "labels": "rumor"}
    added = api.post("/v1/records/banks/flow-exchange/entries", json=entry, headers=as_admin())
    assert added.status_code == 200, added.text
    banks = {b["name"]: b for b in api.get("/v1/records/banks").json()["banks"]}
    assert banks["flow-exchange"]["by_signal_type"] == {"pdq": 3}
    [entry_id] = added.json()["entry_ids"]
    assert api.delete(f"/v1/records/banks/flow-rumors/entries/{entry_id}", headers=as_admin()).status_code == 404
    assert api.delete(f"/v1/records/banks/flow-exchange/entries/{entry_id}", headers=as_reviewer()).status_code == 403
    removed = api.delete(f"/v1/records/banks/flow-exchange/entries/{entry_id}", headers=as_admin())
    assert removed.json() == {"removed": entry_id}, removed.text
    banks = {b["name"]: b for b in api.get("/v1/records/banks").json()["banks"]}
    assert banks["flow-exchange"]["by_signal_type"] == {"pdq": 2}
    api.post("/v1/records/banks/flow-exchange/entries", json=entry, headers=as_admin()).raise_for_status()

    unknown = api.post("/v1/records/banks/no-such-bank/entries", json=entry, headers=as_admin())
    assert unknown.status_code == 404 and unknown.json()["status"] == 404 and "no-such-bank" in unknown.json()["error"]
    malformed = api.post("/v1/records/lookup", json={"signals": [{"signal_type": "pdq", "value": "0" * 63}]})
    assert malformed.status_code == 400 and "signal 1" in malformed.json()["error"]
    assert api.post("/v1/records/banks/flow-exchange/entries", json=entry).status_code == 401     # no reviewer
    stranger = api.post("/v1/records/banks/flow-exchange/entries", json=entry, headers={"X-Reviewer": "mallory"})
    assert stranger.status_code == 403
    with api.__class__(base_url=str(api.base_url)) as keyless:
        assert keyless.get("/v1/records/banks").status_code == 401


def test_complaint_deadline_passes_and_it_is_overdue(api, service):
    # the shortest deadlines a procedure takes: about a second
    procedure = {"description": "test category with tiny deadlines", "acknowledge_within_hours": 0.0003,
                 "resolve_within_hours": 0.0003}
    set_up = api.put("/v1/records/procedures/flow-urgent", json=procedure, headers=as_admin())
    assert set_up.status_code == 200, set_up.text
    filed = api.post("/v1/records/complaints", json={"category": "flow-urgent", "contact": "li@example.cn",
                                                     "message": "This clip of me is fake."})
    assert filed.status_code == 201, filed.text
    token, complaint_id = filed.json()["token"], filed.json()["id"]
    time.sleep(1.5)
    status = api.get(f"/v1/records/complaints/{token}").json()
    assert status["status"] == "received" and "acknowledgement" in status["overdue"] and "contact" not in status
    overdue = api.get("/v1/records/complaints/overdue", headers=as_reviewer()).json()["overdue"]
    assert complaint_id in [c["id"] for c in overdue]
    metrics = {line.split(" ")[0]: float(line.split(" ")[1]) for line in api.get("/metrics").text.splitlines()
               if line.startswith("detector_records_complaints")}
    assert metrics, api.get("/metrics").text[-3000:]
    assert metrics['detector_records_complaints_overdue{deadline="acknowledgement"}'] >= 1
    assert metrics["detector_records_complaints_open"] >= 1

    updated = api.post(f"/v1/records/complaints/{complaint_id}/status", json={"status": "acknowledged"},
                       headers=as_reviewer())
    assert updated.status_code == 200 and updated.json()["status"] == "acknowledged"
    assert api.get("/v1/records/complaints/not-a-token").status_code == 404


def test_app_review_report(api):
    identity = {"name": "FlowFace", "package_id": "com.example.flowface", "version": "1.0.0",
                "filing_number": "网信算备110108123456789012345号", "security_assessment": "SA-2026-0007"}
    sample = "这是一段没有任何标识的示例输出文本，用于应用商店审核。".encode()
    submitted = api.post("/v1/records/app-reviews", data={"identity": json.dumps(identity, ensure_ascii=False)},
                         files={"file": ("sample.txt", sample, "text/plain")}, headers={"X-Reviewer": "store-bot"})
    assert submitted.status_code == 201, submitted.text
    report = submitted.json()
    statuses = {r["requirement"]: r["status"] for r in report["requirements"]}
    assert statuses["identity"] == "pass" and statuses["filing_number"] == "pass"
    assert statuses["implicit_label"] == "fail" and report["verdict"] == "fail"
    assert api.get(f"/v1/records/app-reviews/{report['review_id']}").json() == report
    again = api.post("/v1/records/app-reviews", data={"identity": json.dumps(identity)},
                     files={"file": ("sample.txt", sample, "text/plain")}, headers={"X-Reviewer": "store-bot"})
    assert again.status_code == 409


def test_audit_verify_reports_direct_tampering(api, service):
    before = api.get("/v1/records/audit/verify").json()
    assert before["ok"] is True and before["entries"] >= 5
    database = service.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        original = conn.execute("SELECT details FROM audit_log WHERE id = 2").fetchone()[0]
        conn.execute("UPDATE audit_log SET details = '{\"role\":\"admin\"}' WHERE id = 2")
    try:
        after = api.get("/v1/records/audit/verify").json()
        assert after["ok"] is False and any("entry 2" in p for p in after["problems"])
    finally:
        with sqlite3.connect(database) as conn:
            conn.execute("UPDATE audit_log SET details = ? WHERE id = 2", (original,))
    assert api.get("/v1/records/audit/verify").json()["ok"] is True


def test_face_consent_register_check_withdraw(api, dev_data):
    root = dev_data / "face/deepface-tests/real"
    person_a1, person_a2, person_b = (root / f"img{n}.jpg" for n in (5, 6, 13))
    if not all(p.is_file() for p in (person_a1, person_a2, person_b)):
        pytest.skip(f"dev data face images under {root} are absent")
    registered = api.post("/v1/records/consents", data={"subject": "Person A", "kind": "face", "scope": "face swap"},
                          files={"file": ("a1.jpg", person_a1.read_bytes(), "image/jpeg")})
    assert registered.status_code == 201, registered.text
    token = registered.json()["token"]
    assert api.get(f"/v1/records/consents/{token}").json()["active"] is True

    def check(path) -> dict:
        upload = {"file": (path.name, path.read_bytes(), "image/jpeg")}
        return api.post("/v1/records/consents/check", files=upload).json()

    assert check(person_a2)["all_consented"] and not check(person_b)["all_consented"]
    assert api.delete(f"/v1/records/consents/{token}").json() == {"deleted": True}
    assert api.get(f"/v1/records/consents/{token}").status_code == 404
    assert not check(person_a2)["all_consented"]
    no_face = api.post("/v1/records/consents", data={"subject": "x", "kind": "face", "scope": "s"},
                       files={"file": ("grey.jpg", jpeg(Image.new("RGB", (64, 64), (90, 90, 90)), 90), "image/jpeg")})
    assert no_face.status_code == 400 and no_face.json()["status"] == 400


def test_reviewers_evidence_and_audit_administration(api):
    added = api.post("/v1/records/reviewers", json={"name": "flow-temp", "role": "reviewer"}, headers=as_admin())
    assert added.json() == {"name": "flow-temp", "role": "reviewer"}, added.text
    assert api.post("/v1/records/reviewers", json={"name": "x", "role": "admin"}).status_code == 401
    assert api.post("/v1/records/reviewers", json={"name": "x", "role": "admin"},
                    headers=as_reviewer()).status_code == 403
    listed = {r["name"]: r for r in api.get("/v1/records/reviewers").json()["reviewers"]}
    assert listed["flow-temp"]["active"] is True and listed[ADMIN]["role"] == "admin"

    case = api.post("/v1/records/cases", data={"title": "manual"}, headers={"X-Reviewer": "flow-temp"}).json()
    note = "seen on three accounts".encode()
    attached = api.post(f"/v1/records/cases/{case['id']}/evidence", data={"kind": "note", "media_type": "text/plain"},
                        files={"file": ("note.txt", note, "text/plain")}, headers={"X-Reviewer": "flow-temp"})
    assert attached.status_code == 200, attached.text
    evidence_id = attached.json()["id"]
    download = api.get(f"/v1/records/cases/{case['id']}/evidence/{evidence_id}", headers=as_reviewer())
    assert download.content == note and download.headers["content-type"].startswith("text/plain")
    assert api.get(f"/v1/records/cases/{case['id']}/evidence/{evidence_id}").status_code == 401
    assert api.get(f"/v1/records/cases/{case['id']}/evidence/999999", headers=as_reviewer()).status_code == 404

    off = api.patch("/v1/records/reviewers/flow-temp", json={"active": False}, headers=as_admin())
    assert off.json()["active"] is False
    assert api.post(f"/v1/records/cases/{case['id']}/evidence", data={"kind": "note"},
                    files={"file": ("n.txt", b"x", "text/plain")}, headers={"X-Reviewer": "flow-temp"}).status_code == 403

    assert api.put("/v1/records/audit/retention", json={"days": 30}, headers=as_admin()).status_code == 400
    assert api.put("/v1/records/audit/retention", json={"days": 400}, headers=as_reviewer()).status_code == 403
    assert api.put("/v1/records/audit/retention", json={"days": 400}, headers=as_admin()).json() == {
        "retention_days": 400}
    pruned = api.post("/v1/records/audit/prune", headers=as_admin()).json()
    assert pruned["retention_days"] == 400 and pruned["removed"] == 0
    assert api.get("/v1/records/audit/entries", headers=as_reviewer()).status_code == 403
    actions = [e["action"] for e in api.get("/v1/records/audit/entries", params={"limit": 20},
                                             headers=as_admin()).json()["entries"]]
    assert actions[0] == "audit.prune" and "audit.retention" in actions and "case.evidence_view" in actions
    assert api.get("/v1/records/audit/verify").json()["ok"] is True
