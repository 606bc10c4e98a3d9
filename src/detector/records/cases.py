"""Cases: a reviewer's record of one piece of content, its evidence bundle, the decision, and what was done.

Confirming a case as a synthetic rumor can add its signals to a bank and publish a refutation; later re-uploads then
match with the refutation attached. If an appeal re-opens a banked case and the new decision is not "confirmed
synthetic", its bank entries are withdrawn.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit, bank, hashing
from .common import RecordsError, decode_upload, iso, optional_text, required_text
from .tables import Bank, BankEntry, Case, Complaint, Evidence, MatchEvent, Refutation

DECISIONS = ("confirmed_synthetic", "authentic", "inconclusive")
EVIDENCE_KINDS = ("file_hash", "result", "heatmap", "provenance", "file", "note")
MAX_EVIDENCE_BYTES = 10 * 1024 * 1024           # one evidence item
MAX_CASE_EVIDENCE_BYTES = 50 * 1024 * 1024      # everything attached to one case
MAX_RESULT_JSON_BYTES = 5 * 1024 * 1024
PNG_DATA_URI = "data:image/png;base64,"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def open_case(session: Session, actor: str, now: datetime, *, result: dict | None = None,
              data: bytes | None = None, title: str | None = None, notes: str | None = None,
              heatmaps: list[tuple[str, bytes]] = ()) -> Case:
    """A case from a scan result (with the scanned bytes, so its bank signals can be computed) or a manual one."""
    audit.require_role(session, actor)
    if result is not None and not isinstance(result, dict):
        raise RecordsError(400, "result must be a scan result object")
    result = result or {}
    results_json = json.dumps(result, ensure_ascii=False, default=str)
    if len(results_json.encode()) > MAX_RESULT_JSON_BYTES:
        raise RecordsError(413, f"the scan result is over {MAX_RESULT_JSON_BYTES:,} bytes")
    content_sha256 = result.get("sha256")
    modality = result.get("modality")
    signals: list[dict] = []
    if data is not None:
        file_sha256 = hashlib.sha256(data).hexdigest()
        if content_sha256 and content_sha256 != file_sha256:
            raise RecordsError(400, "the file does not match the scan result (different sha256)")
        content_sha256 = file_sha256
        media = decode_upload(data, "the case file")
        modality = modality or media.modality
        signals = [s.to_dict() for s in hashing.signals_for(media)]
    if not result and data is None and not title:
        raise RecordsError(400, "a manual case needs a title, a file or a scan result")
    case = Case(opened_at=now, opened_by=actor, source="scan" if result else "manual",
                title=required_text(title, "title") if title else str(result.get("path") or "untitled")[-200:],
                content_sha256=content_sha256, modality=modality, results=results_json,
                signals=json.dumps(signals), status="open", notes=optional_text(notes, "notes") or "",
                excluded_reviewers="")
    session.add(case)
    session.flush()
    if content_sha256:
        _evidence(session, case, "file_hash", "sha256", "application/json",
                  json.dumps({"sha256": content_sha256, "size": len(data) if data is not None else None}).encode(),
                  now)
    if result:
        _evidence(session, case, "result", "scan_result.json", "application/json", results_json.encode(), now)
        if result.get("provenance"):
            _evidence(session, case, "provenance", "provenance.json", "application/json",
                      json.dumps(result["provenance"], ensure_ascii=False, default=str).encode(), now)
        for number, png in enumerate(_pngs_in(result.get("evidence") or {}), 1):
            _evidence(session, case, "heatmap", f"heatmap_{number}.png", "image/png", png, now)
    for name, png in heatmaps:
        add_evidence(session, actor, case.id, "heatmap", name, "image/png", png, now)
    audit.record(session, actor, "case.open", f"case:{case.id}",
                 {"source": case.source, "sha256": content_sha256, "modality": modality,
                  "signals": [s["signal_type"] for s in signals]}, now)
    return case


def add_evidence(session: Session, actor: str, case_id: int, kind: str, name: str, media_type: str,
                 content: bytes, now: datetime) -> Evidence:
    audit.require_role(session, actor)
    case = get_case(session, case_id)
    if kind not in EVIDENCE_KINDS:
        raise RecordsError(400, f"evidence kind must be one of {', '.join(EVIDENCE_KINDS)}")
    if kind == "heatmap" and not content.startswith(PNG_MAGIC):
        raise RecordsError(400, f"heatmap {name!r} is not a PNG image")
    item = _evidence(session, case, kind, required_text(name, "evidence name"),
                     required_text(media_type, "media type"), content, now)
    audit.record(session, actor, "case.evidence", f"case:{case.id}",
                 {"kind": kind, "name": name, "sha256": item.sha256, "size": item.size}, now)
    return item


def _evidence(session: Session, case: Case, kind: str, name: str, media_type: str, content: bytes,
              now: datetime) -> Evidence:
    if not content:
        raise RecordsError(400, f"evidence {name!r} is empty")
    if len(content) > MAX_EVIDENCE_BYTES:
        raise RecordsError(413, f"evidence {name!r} is {len(content):,} bytes, over {MAX_EVIDENCE_BYTES:,}")
    held = session.scalar(select(func.coalesce(func.sum(Evidence.size), 0)).where(Evidence.case_id == case.id))
    if held + len(content) > MAX_CASE_EVIDENCE_BYTES:
        raise RecordsError(413, f"case {case.id} evidence would exceed {MAX_CASE_EVIDENCE_BYTES:,} bytes")
    item = Evidence(case_id=case.id, kind=kind, name=name, media_type=media_type,
                    sha256=hashlib.sha256(content).hexdigest(), size=len(content), content=content, added_at=now)
    session.add(item)
    session.flush()
    return item


def decide(session: Session, actor: str, case_id: int, decision: str, now: datetime, *, notes: str | None = None,
           bank_name: str | None = None, labels: list[str] | str | None = None,
           refutation: dict | None = None) -> Case:
    """Record the decision. Adding to a bank needs an admin; a bank entry or refutation needs a synthetic decision."""
    reviewer = audit.require_role(session, actor, "admin" if bank_name else "reviewer")
    case = get_case(session, case_id)
    if decision not in DECISIONS:
        raise RecordsError(400, f"decision must be one of {', '.join(DECISIONS)}")
    if case.status == "decided":
        raise RecordsError(409, f"case {case.id} is already decided; an appeal re-opens it")
    if reviewer.name in _names(case.excluded_reviewers):
        raise RecordsError(403, f"case {case.id} was re-opened on appeal: a different reviewer must decide it")
    if (bank_name or refutation) and decision != "confirmed_synthetic":
        raise RecordsError(400, "only a case confirmed synthetic can be banked or refuted")
    actions = []
    withdrawn = _banked_entries(session, case.id) if decision != "confirmed_synthetic" else []
    if withdrawn:
        audit.require_role(session, actor, "admin")      # withdrawing bank entries changes banks
        for entry in withdrawn:
            bank.remove_entry(session, actor, entry.id, now)
        actions.append(f"withdrew {len(withdrawn)} bank entries")
    if refutation is not None:
        _publish_refutation(session, case, refutation, now)
        actions.append("published refutation")
    if bank_name:
        signals = json.loads(case.signals)
        if not signals:
            raise RecordsError(400, f"case {case.id} has no hashable content to bank (open it with the file)")
        added = bank.add_signals(session, actor, bank_name, [(s["signal_type"], s["value"]) for s in signals],
                                 labels, now, case_id=case.id, skip_duplicates=True)
        actions.append(f"added {added['added']} signals to bank {bank_name}")
    previous = case.decision
    case.decision, case.decided_at, case.decided_by, case.status = decision, now, actor, "decided"
    if notes:
        case.notes = "\n".join(x for x in (case.notes, optional_text(notes, "notes")) if x)
    case.action = "; ".join(actions) or "none"
    audit.record(session, actor, "case.decide", f"case:{case.id}",
                 {"decision": decision, "previous": previous, "action": case.action}, now)
    return case


def _publish_refutation(session: Session, case: Case, refutation: dict, now: datetime) -> None:
    if not isinstance(refutation, dict):
        raise RecordsError(400, "refutation must be an object with title, text and link")
    title = required_text(refutation.get("title"), "refutation title")
    text = required_text(refutation.get("text"), "refutation text", 20_000)
    link = optional_text(refutation.get("link"), "refutation link", 2000)
    if link and not link.startswith(("https://", "http://")):
        raise RecordsError(400, "refutation link must be an http(s) URL")
    existing = session.scalar(select(Refutation).where(Refutation.case_id == case.id))
    if existing is None:
        session.add(Refutation(case_id=case.id, title=title, text=text, link=link, published_at=now))
    else:
        existing.title, existing.text, existing.link, existing.published_at = title, text, link, now
    bank.bump_generation(session)


def reopen(session: Session, actor: str, case_id: int, reason: str, now: datetime) -> Case:
    """Re-open a decided case (an appeal): whoever decided it is excluded from deciding it again."""
    case = get_case(session, case_id)
    if case.status != "decided":
        raise RecordsError(409, f"case {case.id} is not decided, so there is nothing to appeal")
    excluded = _names(case.excluded_reviewers)
    if case.decided_by and case.decided_by not in excluded:
        excluded.append(case.decided_by)
    case.excluded_reviewers, case.status = ",".join(excluded), "reopened"
    audit.record(session, actor, "case.reopen", f"case:{case.id}",
                 {"reason": reason[:500], "excluded_reviewers": excluded}, now)
    return case


def get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id) if isinstance(case_id, int) and not isinstance(case_id, bool) else None
    if case is None:
        raise RecordsError(404, f"no case {case_id!r}")
    return case


def case_dict(session: Session, case: Case) -> dict:
    refutation = session.scalar(select(Refutation).where(Refutation.case_id == case.id))
    evidence = session.execute(select(Evidence.id, Evidence.kind, Evidence.name, Evidence.media_type, Evidence.sha256,
                                      Evidence.size).where(Evidence.case_id == case.id).order_by(Evidence.id)).all()
    return {
        "id": case.id, "title": case.title, "source": case.source, "status": case.status,
        "opened_at": iso(case.opened_at), "opened_by": case.opened_by, "sha256": case.content_sha256,
        "modality": case.modality, "decision": case.decision, "decided_at": iso(case.decided_at),
        "decided_by": case.decided_by, "excluded_reviewers": _names(case.excluded_reviewers), "notes": case.notes,
        "action": case.action, "signals": [s["signal_type"] for s in json.loads(case.signals)],
        "results": json.loads(case.results),
        "refutation": None if refutation is None else {"title": refutation.title, "text": refutation.text,
                                                       "link": refutation.link,
                                                       "published_at": iso(refutation.published_at)},
        "evidence": [{"id": e.id, "kind": e.kind, "name": e.name, "media_type": e.media_type, "sha256": e.sha256,
                      "size": e.size} for e in evidence],
        "banked": [{"entry_id": e.id, "bank": name} for e, name in session.execute(
            select(BankEntry, Bank.name).join(Bank, Bank.id == BankEntry.bank_id).where(BankEntry.case_id == case.id))],
    }


def view_case(session: Session, actor: str, case_id: int, now: datetime) -> dict:
    audit.require_role(session, actor)
    case = get_case(session, case_id)
    audit.record(session, actor, "case.view", f"case:{case.id}", {}, now)
    return case_dict(session, case)


def view_evidence(session: Session, actor: str, case_id: int, evidence_id: int, now: datetime) -> Evidence:
    audit.require_role(session, actor)
    item = session.get(Evidence, evidence_id)
    if item is None or item.case_id != case_id:
        raise RecordsError(404, f"case {case_id} has no evidence {evidence_id}")
    audit.record(session, actor, "case.evidence_view", f"case:{case_id}",
                 {"evidence_id": evidence_id, "sha256": item.sha256}, now)
    return item


# ---- regulator report --------------------------------------------------------------------------------------------

REPORT_COLUMNS = ("case_id", "opened_at", "modality", "sha256", "title", "decision", "decided_at", "decided_by",
                  "action", "banks", "refutation_title", "refutation_link", "reuploads_in_period", "complaints")


def regulator_report(session: Session, actor: str, start: datetime, end: datetime, now: datetime) -> dict:
    """Cases opened or decided in [start, end): what was found, when, the action taken and the re-upload counts."""
    audit.require_role(session, actor)
    if end <= start:
        raise RecordsError(400, "the report period must end after it starts")
    cases = session.scalars(select(Case).where(
        ((Case.opened_at >= start) & (Case.opened_at < end)) |
        ((Case.decided_at >= start) & (Case.decided_at < end))).order_by(Case.id)).all()
    ids = [c.id for c in cases]
    reuploads = dict(session.execute(
        select(BankEntry.case_id, func.count(MatchEvent.id)).join(MatchEvent, MatchEvent.entry_id == BankEntry.id)
        .where(BankEntry.case_id.in_(ids), MatchEvent.at >= start, MatchEvent.at < end)
        .group_by(BankEntry.case_id)).all()) if ids else {}
    banks: dict[int, set[str]] = {}
    for case_id, name in session.execute(select(BankEntry.case_id, Bank.name).join(Bank, Bank.id == BankEntry.bank_id)
                                         .where(BankEntry.case_id.in_(ids))) if ids else ():
        banks.setdefault(case_id, set()).add(name)
    refutations = {r.case_id: r for r in session.scalars(select(Refutation).where(Refutation.case_id.in_(ids)))} \
        if ids else {}
    complaints = dict(session.execute(select(Complaint.case_id, func.count()).where(Complaint.case_id.in_(ids))
                                      .group_by(Complaint.case_id)).all()) if ids else {}
    rows = [{
        "case_id": c.id, "opened_at": iso(c.opened_at), "modality": c.modality, "sha256": c.content_sha256,
        "title": c.title, "decision": c.decision, "decided_at": iso(c.decided_at), "decided_by": c.decided_by,
        "action": c.action, "banks": sorted(banks.get(c.id, ())),
        "refutation_title": refutations[c.id].title if c.id in refutations else None,
        "refutation_link": refutations[c.id].link if c.id in refutations else None,
        "reuploads_in_period": reuploads.get(c.id, 0), "complaints": complaints.get(c.id, 0),
    } for c in cases]
    all_matches = session.scalar(select(func.count()).select_from(MatchEvent)
                                 .where(MatchEvent.at >= start, MatchEvent.at < end))
    decisions = {d: sum(1 for r in rows if r["decision"] == d) for d in DECISIONS}
    audit.record(session, actor, "report.regulator", "cases", {"start": iso(start), "end": iso(end),
                                                               "cases": len(rows)}, now)
    return {"period": {"start": iso(start), "end": iso(end)}, "generated_at": iso(now), "generated_by": actor,
            "summary": {"cases": len(rows), "decisions": decisions,
                        "refutations": sum(1 for r in rows if r["refutation_title"]),
                        "reuploads_matched": all_matches,
                        "complaints_received": session.scalar(
                            select(func.count()).select_from(Complaint)
                            .where(Complaint.received_at >= start, Complaint.received_at < end))},
            "cases": rows}


def report_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in report["cases"]:
        writer.writerow({**row, "banks": ";".join(row["banks"])})
    return out.getvalue()


# ---- helpers -----------------------------------------------------------------------------------------------------

def _pngs_in(evidence: object) -> list[bytes]:
    """Heatmaps a detector placed in its evidence as PNG data URIs."""
    found = []
    if isinstance(evidence, dict):
        values = evidence.values()
    elif isinstance(evidence, list):
        values = evidence
    else:
        values = [evidence]
    for value in values:
        if isinstance(value, str) and value.startswith(PNG_DATA_URI):
            try:
                png = base64.b64decode(value[len(PNG_DATA_URI):], validate=True)
            except ValueError:
                continue
            if png.startswith(PNG_MAGIC):
                found.append(png)
        elif isinstance(value, (dict, list)):
            found.extend(_pngs_in(value))
    return found


def _banked_entries(session: Session, case_id: int) -> list[BankEntry]:
    return list(session.scalars(select(BankEntry).where(BankEntry.case_id == case_id)))


def _names(text: str) -> list[str]:
    return [x for x in text.split(",") if x]
