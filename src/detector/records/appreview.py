"""App-store review of a deep-synthesis app (Provisions Art. 13): its identity and filing, plus sample outputs that
are scanned and checked for the GB 45438 implicit label and the explicit label.

Each requirement ends "pass", "fail" or "not_checked" (a check this installation cannot do, such as reading a
visible corner label without OCR), with the evidence it was judged on. The app passes only when every requirement
passes; a "not_checked" requirement sends it to a person instead.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..media import MediaInput
from ..scan import Scanner
from . import audit
from .common import RecordsError, iso, optional_text, required_text
from .tables import AppReview

MAX_SAMPLES = 20
MAX_SAMPLE_BYTES = 50 * 1024 * 1024
# CAC algorithm filing numbers read "网信算备" + a run of digits + "号"; generative-AI service registrations
# ("登记") and provincial filings keep the same shape with their own prefix.
FILING_NUMBER = re.compile(r"^(网信算备|[\u4e00-\u9fff]{1,4}网信算备|[\u4e00-\u9fff]{1,6}登记)\s*[0-9A-Za-z-]{8,40}\s*号?$")
PACKAGE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")


def submit(session: Session, submitter: str, identity: dict, samples: list[tuple[str, bytes]], scanner: Scanner,
           now: datetime) -> AppReview:
    """Review an app: scan its samples, judge every requirement, store and return the review."""
    submitter = required_text(submitter, "submitter")
    if not isinstance(identity, dict):
        raise RecordsError(400, "identity must be an object")
    name = required_text(identity.get("name"), "app name")
    package_id = required_text(identity.get("package_id"), "package id")
    version = required_text(identity.get("version"), "version", 100)
    filing = optional_text(identity.get("filing_number"), "filing number", 200)
    assessment = optional_text(identity.get("security_assessment"), "security assessment reference", 500)
    if not samples:
        raise RecordsError(400, "submit at least one sample output")
    if len(samples) > MAX_SAMPLES:
        raise RecordsError(413, f"at most {MAX_SAMPLES} samples per review")
    for sample_name, data in samples:
        if not data:
            raise RecordsError(400, f"sample {sample_name!r} is empty")
        if len(data) > MAX_SAMPLE_BYTES:
            raise RecordsError(413, f"sample {sample_name!r} is {len(data):,} bytes, over {MAX_SAMPLE_BYTES:,}")
    if session.scalar(select(AppReview.id).where(AppReview.package_id == package_id,
                                                 AppReview.version == version)) is not None:
        raise RecordsError(409, f"{package_id} {version} was already reviewed")

    requirements = [
        _requirement("identity", "pass" if PACKAGE_ID.match(package_id) else "fail",
                     "app name, package id (reverse-domain form) and version are given",
                     {"name": name, "package_id": package_id, "version": version}),
        _requirement("filing_number", "pass" if filing and FILING_NUMBER.match(filing) else "fail",
                     "an algorithm filing or registration number in its published form",
                     {"filing_number": filing}),
        _requirement("security_assessment", "pass" if assessment else "fail",
                     "a security-assessment reference is given", {"security_assessment": assessment}),
    ]
    results = scanner.scan([MediaInput.from_bytes(data, name=sample_name) for sample_name, data in samples])
    sample_reports = [_judge_sample(sample_name, result.to_dict())
                      for (sample_name, _data), result in zip(samples, results)]
    for key, title in (("implicit_label", "every sample carries a valid GB 45438 implicit label"),
                       ("explicit_label", "every sample carries an explicit (visible or audible) label")):
        statuses = [s["checks"][key]["status"] for s in sample_reports]
        overall = "fail" if "fail" in statuses else "not_checked" if "not_checked" in statuses else "pass"
        requirements.append(_requirement(key, overall, title,
                                         {s["name"]: s["checks"][key] for s in sample_reports}))
    statuses = [r["status"] for r in requirements]
    verdict = "fail" if "fail" in statuses else "needs_manual_check" if "not_checked" in statuses else "pass"
    report = {"app": {"name": name, "package_id": package_id, "version": version, "filing_number": filing,
                      "security_assessment": assessment},
              "submitted_by": submitter, "reviewed_at": iso(now), "verdict": verdict,
              "requirements": requirements, "samples": sample_reports}
    review = AppReview(name=name, package_id=package_id, version=version, filing_number=filing,
                       security_assessment=assessment, submitted_by=submitter, submitted_at=now,
                       passed=verdict == "pass", report=json.dumps(report, ensure_ascii=False, default=str))
    session.add(review)
    session.flush()
    report["review_id"] = review.id
    review.report = json.dumps(report, ensure_ascii=False, default=str)
    audit.record(session, submitter, "appreview.submit", f"app:{package_id}@{version}",
                 {"review_id": review.id, "verdict": verdict, "samples": len(samples)}, now)
    return review


def _judge_sample(name: str, result: dict) -> dict:
    findings = result.get("provenance") or {}
    implicit = findings.get("implicit_label")
    if result.get("verdict") == "error" and not findings:
        implicit_check = _check("fail", {"reason": f"the sample could not be read: {result.get('reason')}"})
    elif implicit is None:
        implicit_check = _check("fail", {"reason": "no implicit label found"})
    else:
        implicit_check = _check("pass" if implicit.get("valid") else "fail",
                                {"location": implicit.get("location"), "fields": implicit.get("fields"),
                                 "errors": implicit.get("errors"), "warnings": implicit.get("warnings"),
                                 "labels_found": findings.get("labels_found")})
    explicit = findings.get("explicit_label") or {}
    if not explicit.get("checked"):
        explicit_check = _check("not_checked", {"reason": explicit.get("reason") or "not checked"})
    else:
        explicit_check = _check("pass" if explicit.get("found") else "fail", explicit)
    return {"name": name, "sha256": result.get("sha256"), "modality": result.get("modality"),
            "detector": {"verdict": result.get("verdict"), "score": result.get("score"),
                         "reason": result.get("reason")},
            "category": findings.get("category"), "tamper": findings.get("tamper"),
            "checks": {"implicit_label": implicit_check, "explicit_label": explicit_check}}


def _check(status: str, evidence: dict) -> dict:
    return {"status": status, "evidence": evidence}


def _requirement(key: str, status: str, title: str, evidence: dict) -> dict:
    return {"requirement": key, "title": title, "status": status, "evidence": evidence}


def get_review(session: Session, review_id: int) -> dict:
    review = session.get(AppReview, review_id) if isinstance(review_id, int) else None
    if review is None:
        raise RecordsError(404, f"no app review {review_id!r}")
    return json.loads(review.report)
