"""The records tables (declared on the shared `Base`); the logic that reads and writes them lives beside them in
bank.py, cases.py, complaints.py, appreview.py and consent.py. The audit tables are in audit.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .common import UtcDateTime
from .db import Base


class Bank(Base):
    __tablename__ = "banks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BankEntry(Base):
    __tablename__ = "bank_entries"
    __table_args__ = (UniqueConstraint("bank_id", "signal_type", "value_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"), index=True)
    signal_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    value_sha256: Mapped[str] = mapped_column(String(64))      # unique key for values of any length
    labels: Mapped[str] = mapped_column(Text, default="")       # comma-separated
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MatchEvent(Base):
    """One re-upload that matched a bank entry: the counts in regulator reports come from here."""

    __tablename__ = "bank_matches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("bank_entries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    distance: Mapped[float] = mapped_column()


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    opened_by: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(20))             # scan | manual
    title: Mapped[str] = mapped_column(String(200))
    content_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    modality: Mapped[str | None] = mapped_column(String(20))
    results: Mapped[str] = mapped_column(Text, default="{}")     # JSON: the scan result(s)
    signals: Mapped[str] = mapped_column(Text, default="[]")     # JSON: hash-bank signals of the content
    status: Mapped[str] = mapped_column(String(20))             # open | decided | reopened
    decision: Mapped[str | None] = mapped_column(String(30))    # confirmed_synthetic | authentic | inconclusive
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    excluded_reviewers: Mapped[str] = mapped_column(Text, default="")   # comma-separated: earlier deciders (appeals)
    notes: Mapped[str] = mapped_column(Text, default="")
    action: Mapped[str | None] = mapped_column(Text)            # what was done: banked, refutation published, ...


class Evidence(Base):
    __tablename__ = "case_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))               # file_hash | result | heatmap | provenance | file
    name: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Refutation(Base):
    __tablename__ = "refutations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2000))
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Procedure(Base):
    """The published complaint procedure: per category, the acknowledgement and resolution deadlines."""

    __tablename__ = "complaint_procedures"

    category: Mapped[str] = mapped_column(String(50), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    ack_hours: Mapped[float] = mapped_column()
    resolve_hours: Mapped[float] = mapped_column()


class Complaint(Base):
    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_open", "status", "resolve_due"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)   # the complainant's handle for status checks
    category: Mapped[str] = mapped_column(ForeignKey("complaint_procedures.category"))
    contact: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(200))      # content sha256, URL or "case:<id>"
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    message: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)   # duplicate-submission key
    status: Mapped[str] = mapped_column(String(20))               # received | acknowledged | resolved | rejected
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ack_due: Mapped[datetime] = mapped_column(UtcDateTime)
    resolve_due: Mapped[datetime] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolution: Mapped[str | None] = mapped_column(Text)


class ComplaintEvent(Base):
    __tablename__ = "complaint_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")


class AppReview(Base):
    __tablename__ = "app_reviews"
    __table_args__ = (UniqueConstraint("package_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    package_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    filing_number: Mapped[str | None] = mapped_column(String(200))
    security_assessment: Mapped[str | None] = mapped_column(String(500))
    submitted_by: Mapped[str] = mapped_column(String(200))
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    passed: Mapped[bool] = mapped_column()
    report: Mapped[str] = mapped_column(Text)                    # JSON


class Consent(Base):
    """A consent record holds an embedding, never the face image or voice recording it came from."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)   # for the person to look up or withdraw
    subject: Mapped[str] = mapped_column(String(200))
    representative: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))                 # face | voice
    model: Mapped[str] = mapped_column(String(100))               # which embedding produced the vector
    embedding: Mapped[bytes] = mapped_column(LargeBinary)         # float32, L2-normalized for voice
    scope: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
