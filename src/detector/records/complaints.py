"""Complaints and appeals under a published procedure with per-category deadlines.

A complaint is received, then acknowledged, then resolved or rejected; every change is an event (who, when, from,
to, note) and an audit entry. The complainant holds a random token to check status; the contact details never
leave this module's tables. An appeal (category "appeal", naming a case) re-opens the case for a different reviewer.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit, cases
from .common import RecordsError, iso, optional_text, required_text
from .tables import Complaint, ComplaintEvent, Procedure

# category: (what it is for, hours to acknowledge, hours to resolve); admins can change these.
DEFAULT_PROCEDURES = {
    "depicts_me": ("Content shows my face or voice, edited or generated without my consent", 24, 72),
    "misinformation": ("Synthetic content spreading a false claim (a rumor)", 24, 120),
    "missing_label": ("AI-generated content without the required explicit or implicit label", 48, 168),
    "appeal": ("Appeal against a decision on a case; a different reviewer decides it again", 48, 240),
    "other": ("Anything else about synthetic content or our handling of it", 72, 360),
}
OPEN_STATES = ("received", "acknowledged")
TRANSITIONS = {"received": ("acknowledged", "resolved", "rejected"), "acknowledged": ("resolved", "rejected")}
MAX_MESSAGE_CHARS = 10_000
_CONTACT = re.compile(r"^([^@\s]+@[^@\s]+\.[^@\s]+|\+?[0-9][0-9 ()-]{5,30})$")


def ensure_procedures(session: Session) -> None:
    """Publish the default procedure for any category that has none yet."""
    present = set(session.scalars(select(Procedure.category)))
    for category, (description, ack, resolve) in DEFAULT_PROCEDURES.items():
        if category not in present:
            session.add(Procedure(category=category, description=description, ack_hours=ack, resolve_hours=resolve))


def procedures(session: Session) -> list[dict]:
    return [{"category": p.category, "description": p.description, "acknowledge_within_hours": p.ack_hours,
             "resolve_within_hours": p.resolve_hours}
            for p in session.scalars(select(Procedure).order_by(Procedure.category))]


def set_procedure(session: Session, actor: str, category: str, description: str, ack_hours: float,
                  resolve_hours: float, now: datetime) -> dict:
    audit.require_role(session, actor, "admin")
    category = required_text(category, "category", 50)
    for value, what in ((ack_hours, "acknowledgement deadline"), (resolve_hours, "resolution deadline")):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 24 * 365:
            raise RecordsError(400, f"{what} must be a number of hours between 0 and {24 * 365}")
    if resolve_hours < ack_hours:
        raise RecordsError(400, "the resolution deadline cannot come before the acknowledgement deadline")
    procedure = session.get(Procedure, category)
    before = None if procedure is None else [procedure.ack_hours, procedure.resolve_hours]
    if procedure is None:
        procedure = Procedure(category=category)
        session.add(procedure)
    procedure.description = required_text(description, "description", 2000)
    procedure.ack_hours, procedure.resolve_hours = float(ack_hours), float(resolve_hours)
    audit.record(session, actor, "complaint.procedure", f"procedure:{category}",
                 {"before_hours": before, "after_hours": [procedure.ack_hours, procedure.resolve_hours]}, now)
    return {"category": category, "acknowledge_within_hours": procedure.ack_hours,
            "resolve_within_hours": procedure.resolve_hours}


def file_complaint(session: Session, now: datetime, *, category: str, contact: str, message: str,
                   subject: str | None = None, case_id: int | None = None) -> Complaint:
    procedure = session.get(Procedure, category) if isinstance(category, str) else None
    if procedure is None:
        raise RecordsError(400, f"unknown complaint category {category!r}; see the published procedure")
    contact = required_text(contact, "contact", 320)
    if not _CONTACT.match(contact):
        raise RecordsError(400, "contact must be an e-mail address or a phone number")
    message = required_text(message, "message", MAX_MESSAGE_CHARS)
    subject = optional_text(subject, "subject", 200)
    if category == "appeal" and case_id is None:
        raise RecordsError(400, "an appeal must name the case it is about (case_id)")
    case = cases.get_case(session, case_id) if case_id is not None else None
    fingerprint = hashlib.sha256("\x1f".join(
        [category, contact.casefold(), subject or "", str(case_id or ""), " ".join(message.split()).casefold()]
    ).encode()).hexdigest()
    duplicate = session.scalar(select(Complaint.id).where(Complaint.fingerprint == fingerprint,
                                                          Complaint.status.in_(OPEN_STATES)))
    if duplicate is not None:
        raise RecordsError(409, "this complaint was already received and is still open; check it with its token")
    complaint = Complaint(token=secrets.token_hex(24), category=category, contact=contact, subject=subject,
                          case_id=case_id, message=message, fingerprint=fingerprint, status="received",
                          received_at=now, ack_due=now + timedelta(hours=procedure.ack_hours),
                          resolve_due=now + timedelta(hours=procedure.resolve_hours))
    session.add(complaint)
    session.flush()
    session.add(ComplaintEvent(complaint_id=complaint.id, at=now, actor="complainant", from_status=None,
                               to_status="received", note=""))
    audit.record(session, "public", "complaint.file", f"complaint:{complaint.id}",
                 {"category": category, "case_id": case_id}, now)
    if category == "appeal":
        cases.reopen(session, "public", case.id, f"appeal in complaint {complaint.id}", now)
    return complaint


def transition(session: Session, actor: str, complaint_id: int, to_status: str, now: datetime,
               note: str | None = None) -> Complaint:
    audit.require_role(session, actor)
    complaint = get_complaint(session, complaint_id)
    if to_status not in TRANSITIONS.get(complaint.status, ()):
        raise RecordsError(409, f"complaint {complaint.id} is {complaint.status}; it cannot become {to_status}")
    note = optional_text(note, "note", MAX_MESSAGE_CHARS) or ""
    if to_status in ("resolved", "rejected") and not note:
        raise RecordsError(400, "a resolution or rejection needs a note for the complainant")
    session.add(ComplaintEvent(complaint_id=complaint.id, at=now, actor=actor, from_status=complaint.status,
                               to_status=to_status, note=note))
    previous, complaint.status = complaint.status, to_status
    if complaint.acknowledged_at is None:
        complaint.acknowledged_at = now            # resolving also answers the acknowledgement deadline
    if to_status in ("resolved", "rejected"):
        complaint.resolved_at, complaint.resolution = now, note
    audit.record(session, actor, "complaint.status", f"complaint:{complaint.id}",
                 {"from": previous, "to": to_status}, now)
    return complaint


def get_complaint(session: Session, complaint_id: int) -> Complaint:
    complaint = session.get(Complaint, complaint_id) if isinstance(complaint_id, int) else None
    if complaint is None:
        raise RecordsError(404, f"no complaint {complaint_id!r}")
    return complaint


def status_by_token(session: Session, token: str, now: datetime) -> dict:
    complaint = session.scalar(select(Complaint).where(Complaint.token == token)) if isinstance(token, str) else None
    if complaint is None:
        raise RecordsError(404, "no complaint with this token")
    events = session.scalars(select(ComplaintEvent).where(ComplaintEvent.complaint_id == complaint.id)
                             .order_by(ComplaintEvent.id))
    return {**_public(complaint, now),
            "history": [{"at": iso(e.at), "from": e.from_status, "to": e.to_status, "note": e.note}
                        for e in events]}


def _public(complaint: Complaint, now: datetime) -> dict:
    """What the complainant and reports may see (no contact details)."""
    return {"id": complaint.id, "category": complaint.category, "status": complaint.status,
            "case_id": complaint.case_id, "received_at": iso(complaint.received_at),
            "acknowledge_by": iso(complaint.ack_due), "resolve_by": iso(complaint.resolve_due),
            "acknowledged_at": iso(complaint.acknowledged_at), "resolved_at": iso(complaint.resolved_at),
            "resolution": complaint.resolution, "overdue": _overdue(complaint, now)}


def _overdue(complaint: Complaint, now: datetime) -> list[str]:
    missed = []
    if complaint.acknowledged_at is None and now > complaint.ack_due:
        missed.append("acknowledgement")
    if complaint.status in OPEN_STATES and now > complaint.resolve_due:
        missed.append("resolution")
    return missed


def overdue(session: Session, now: datetime) -> list[dict]:
    """Open complaints past a deadline, most overdue first."""
    candidates = session.scalars(select(Complaint).where(
        Complaint.status.in_(OPEN_STATES),
        (Complaint.resolve_due < now) | (Complaint.acknowledged_at.is_(None) & (Complaint.ack_due < now)))
        .order_by(Complaint.ack_due))
    return [_public(c, now) for c in candidates]


def metrics(session: Session, now: datetime) -> dict:
    """Gauges for monitoring: open complaints and how many are past each deadline."""
    open_count = session.scalar(select(func.count()).select_from(Complaint).where(Complaint.status.in_(OPEN_STATES)))
    ack_overdue = session.scalar(select(func.count()).select_from(Complaint).where(
        Complaint.status.in_(OPEN_STATES), Complaint.acknowledged_at.is_(None), Complaint.ack_due < now))
    resolution_overdue = session.scalar(select(func.count()).select_from(Complaint).where(
        Complaint.status.in_(OPEN_STATES), Complaint.resolve_due < now))
    return {"complaints_open": open_count, "complaints_ack_overdue": ack_overdue,
            "complaints_resolution_overdue": resolution_overdue}
