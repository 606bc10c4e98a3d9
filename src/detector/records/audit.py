"""Append-only audit chain, reviewer identities and roles, and retention.

Each entry stores the hash of the one before it and its own hash over (id, time, actor, action, target, details,
previous hash). `verify` walks the chain from its anchor: an edited entry no longer hashes to its stored value, a
deleted one leaves a gap in the ids and a broken link, and deleting the newest entries is caught by the head row
(last id and hash) that every append updates in the same transaction. The head hash printed by `verify` can be kept
outside the database; then even a rewrite of the whole table and head shows.

Pruning deletes entries older than the retention period from the start of the chain, moves the anchor to the first
kept entry (its previous hash becomes the new anchor hash) and is itself an audited action.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Integer, String, Text, delete, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from .common import RecordsError, UtcDateTime, canonical_json, iso, required_text
from .db import Base

GENESIS_HASH = "0" * 64
ROLES = ("reviewer", "admin")
DEFAULT_RETENTION_DAYS = 183          # at least six months, as the deep-synthesis rules require for logs
MIN_RETENTION_DAYS = 183
RETENTION_SETTING = "audit_retention_days"


class Reviewer(Base):
    __tablename__ = "reviewers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    target: Mapped[str] = mapped_column(String(200))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: where the kept chain starts (anchor) and ends (last)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    anchor_id: Mapped[int] = mapped_column(Integer)          # id of the first kept entry
    anchor_hash: Mapped[str] = mapped_column(String(64))     # the previous hash that entry must carry
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class Setting(Base):
    __tablename__ = "records_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


def entry_hash(entry_id: int, at: datetime, actor: str, action: str, target: str, details: str,
               prev_hash: str) -> str:
    payload = canonical_json([entry_id, iso(at), actor, action, target, details, prev_hash])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def record(session: Session, actor: str, action: str, target: str, details: dict[str, Any],
           now: datetime) -> AuditEntry:
    """Append one entry in the caller's transaction (so the change and its record commit or roll back together)."""
    # Updating the head first takes the write lock (a row lock on PostgreSQL), so concurrent appends queue up
    # instead of forking the chain.
    bumped = session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_id=AuditHead.last_id + 1))
    if bumped.rowcount == 0:
        session.add(AuditHead(id=1, anchor_id=1, anchor_hash=GENESIS_HASH, last_id=1, last_hash=GENESIS_HASH))
        session.flush()
    head = session.get(AuditHead, 1, populate_existing=True)
    text = canonical_json(details)
    entry = AuditEntry(id=head.last_id, at=now, actor=actor, action=action, target=target, details=text,
                       prev_hash=head.last_hash)
    entry.entry_hash = entry_hash(entry.id, now, actor, action, target, text, head.last_hash)
    head.last_hash = entry.entry_hash
    session.add(entry)
    session.flush()
    return entry


@dataclass
class VerifyReport:
    ok: bool
    entries: int
    head_hash: str
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "entries": self.entries, "head_hash": self.head_hash, "problems": self.problems}


def verify(session: Session, max_problems: int = 50) -> VerifyReport:
    head = session.get(AuditHead, 1)
    if head is None:
        count = session.scalar(select(func.count()).select_from(AuditEntry))
        problems = [] if count == 0 else [f"{count} entries exist but the chain head row is missing"]
        return VerifyReport(not problems, count, GENESIS_HASH, problems)
    problems: list[str] = []
    expected_id, expected_prev, seen = head.anchor_id, head.anchor_hash, 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=2000)):
        seen += 1
        if entry.id != expected_id:
            if entry.id > expected_id:
                problems.append(f"entries {expected_id}..{entry.id - 1} are missing (deleted)")
            else:
                problems.append(f"entry {entry.id} lies before the chain anchor {head.anchor_id}")
        if entry.prev_hash != expected_prev:
            problems.append(f"entry {entry.id}: previous-hash link is broken")
        if entry_hash(entry.id, entry.at, entry.actor, entry.action, entry.target, entry.details,
                      entry.prev_hash) != entry.entry_hash:
            problems.append(f"entry {entry.id}: contents do not match its hash (edited)")
        expected_id, expected_prev = entry.id + 1, entry.entry_hash
        if len(problems) >= max_problems:
            problems.append("stopped after too many problems")
            break
    else:
        if expected_id - 1 != head.last_id or expected_prev != head.last_hash:
            problems.append(f"the chain ends at entry {expected_id - 1} but the head records entry {head.last_id} "
                            "(newest entries deleted or head edited)")
    return VerifyReport(not problems, seen, head.last_hash, problems)


# ---- reviewers and roles -----------------------------------------------------------------------------------------

def require_role(session: Session, actor: str | None, role: str = "reviewer") -> Reviewer:
    """The active reviewer named `actor`, who must hold `role` (admins hold every role)."""
    if not actor:
        raise RecordsError(401, "this action needs a reviewer identity (actor)")
    reviewer = session.scalar(select(Reviewer).where(Reviewer.name == actor))
    if reviewer is None or not reviewer.active:
        raise RecordsError(403, f"{actor!r} is not an active reviewer")
    if role == "admin" and reviewer.role != "admin":
        raise RecordsError(403, f"only admins may do this; {actor!r} is a {reviewer.role}")
    return reviewer


def add_reviewer(session: Session, actor: str | None, name: str, role: str, now: datetime) -> Reviewer:
    """Admins add reviewers; the very first identity (bootstrap) may be created by anyone and must be an admin."""
    name = required_text(name, "reviewer name")
    if role not in ROLES:
        raise RecordsError(400, f"role must be one of {', '.join(ROLES)}")
    has_admin = session.scalar(select(func.count()).select_from(Reviewer).where(Reviewer.role == "admin")) > 0
    if has_admin:
        require_role(session, actor, "admin")
    elif role != "admin":
        raise RecordsError(400, "the first reviewer must be an admin")
    if session.scalar(select(Reviewer).where(Reviewer.name == name)) is not None:
        raise RecordsError(409, f"reviewer {name!r} already exists")
    reviewer = Reviewer(name=name, role=role, active=True, created_at=now)
    session.add(reviewer)
    record(session, actor or name, "reviewer.add", f"reviewer:{name}", {"role": role, "bootstrap": not has_admin},
           now)
    return reviewer


def update_reviewer(session: Session, actor: str, name: str, now: datetime, role: str | None = None,
                    active: bool | None = None) -> Reviewer:
    """Change a reviewer's role or deactivate them (admins only); the last active admin cannot be removed."""
    require_role(session, actor, "admin")
    reviewer = session.scalar(select(Reviewer).where(Reviewer.name == name)) if isinstance(name, str) else None
    if reviewer is None:
        raise RecordsError(404, f"no reviewer {name!r}")
    if role is not None and role not in ROLES:
        raise RecordsError(400, f"role must be one of {', '.join(ROLES)}")
    before = {"role": reviewer.role, "active": reviewer.active}
    reviewer.role = role or reviewer.role
    reviewer.active = reviewer.active if active is None else bool(active)
    session.flush()
    admins = session.scalar(select(func.count()).select_from(Reviewer)
                            .where(Reviewer.role == "admin", Reviewer.active.is_(True)))
    if admins == 0:
        raise RecordsError(409, "this would leave no active admin")
    record(session, actor, "reviewer.update", f"reviewer:{name}",
           {"before": before, "after": {"role": reviewer.role, "active": reviewer.active}}, now)
    return reviewer


def reviewers(session: Session) -> list[dict]:
    return [{"name": r.name, "role": r.role, "active": r.active, "created_at": iso(r.created_at)}
            for r in session.scalars(select(Reviewer).order_by(Reviewer.name))]


# ---- retention ---------------------------------------------------------------------------------------------------

def retention_days(session: Session) -> int:
    setting = session.get(Setting, RETENTION_SETTING)
    return int(setting.value) if setting else DEFAULT_RETENTION_DAYS


def set_retention(session: Session, actor: str, days: int, now: datetime) -> int:
    require_role(session, actor, "admin")
    if not isinstance(days, int) or isinstance(days, bool) or days < MIN_RETENTION_DAYS:
        raise RecordsError(400, f"retention must be a whole number of days >= {MIN_RETENTION_DAYS} (six months)")
    before = retention_days(session)
    session.merge(Setting(key=RETENTION_SETTING, value=str(days)))
    record(session, actor, "audit.retention", "settings:audit", {"from_days": before, "to_days": days}, now)
    return days


def prune(session: Session, actor: str, now: datetime) -> dict:
    """Delete entries older than the retention period; the anchor moves past them and the prune is recorded."""
    require_role(session, actor, "admin")
    days = retention_days(session)
    cutoff = now - timedelta(days=days)
    head = session.get(AuditHead, 1)
    last_old = None if head is None else session.scalar(
        select(AuditEntry).where(AuditEntry.at < cutoff).order_by(AuditEntry.id.desc()).limit(1))
    removed = 0
    if last_old is not None:
        removed = session.execute(delete(AuditEntry).where(AuditEntry.id <= last_old.id)).rowcount
        head.anchor_id, head.anchor_hash = last_old.id + 1, last_old.entry_hash
    details = {"retention_days": days, "cutoff": iso(cutoff), "removed": removed,
               "through_id": last_old.id if last_old else None}
    record(session, actor, "audit.prune", "audit_log", details, now)
    return details


def entries(session: Session, since: datetime | None = None, until: datetime | None = None,
            limit: int = 1000) -> list[dict]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    return [{"id": e.id, "at": iso(e.at), "actor": e.actor, "action": e.action, "target": e.target,
             "details": e.details, "hash": e.entry_hash} for e in session.scalars(query)]
