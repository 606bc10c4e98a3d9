"""The network log (Art. 10): one row per scanned item of every request, and one for each refused request.

Rows are written in the request's own transaction before its response is sent, so a response a client saw always
has its record. Exported as JSON lines or CSV.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Iterable

from sqlalchemy import DateTime, Engine, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, transaction, utcnow

EXPORT_FIELDS = ("id", "request_id", "item_index", "received_at", "tenant", "endpoint", "status_code",
                 "content_sha256", "modality", "verdict", "score", "model_name", "model_version", "latency_ms",
                 "job_id", "error")


class RequestRecord(Base):
    __tablename__ = "request_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    item_index: Mapped[int | None] = mapped_column(Integer, nullable=True)   # None: the request was refused whole
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    tenant: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    endpoint: Mapped[str] = mapped_column(String(100))
    status_code: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    modality: Mapped[str | None] = mapped_column(String(16), nullable=True)
    verdict: Mapped[str | None] = mapped_column(String(32), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass
class LogEntry:
    """What a request handler knows about one item (or about a refused request, with item_index None)."""

    status_code: int
    item_index: int | None = None
    content_sha256: str | None = None
    modality: str | None = None
    verdict: str | None = None
    score: float | None = None
    model_name: str | None = None
    model_version: str | None = None
    job_id: str | None = None
    error: str | None = None

    @classmethod
    def from_result(cls, index: int, result: dict, status_code: int = 200) -> "LogEntry":
        """From a ScanResult dict (the JSON contract)."""
        model = result.get("model") or {}
        error = result.get("reason") if result.get("verdict") == "error" else None
        return cls(status_code=status_code, item_index=index, content_sha256=result.get("sha256"),
                   modality=result.get("modality"), verdict=result.get("verdict"), score=result.get("score"),
                   model_name=model.get("name"), model_version=model.get("version"), error=error)


@dataclass
class RequestLog:
    """One request: who, where, how long, and its rows."""

    request_id: str
    tenant: str | None
    endpoint: str
    latency_ms: float
    entries: list[LogEntry]
    received_at: datetime = field(default_factory=utcnow)


def record_requests(engine: Engine, logs: Iterable[RequestLog]) -> None:
    """The rows of several requests in one transaction: a burst of requests costs one commit (group commit)."""
    with transaction(engine) as session:
        session.add_all(RequestRecord(request_id=log.request_id, tenant=log.tenant, endpoint=log.endpoint,
                                      latency_ms=round(log.latency_ms, 3), received_at=log.received_at,
                                      **entry.__dict__) for log in logs for entry in log.entries)


def records(engine: Engine, request_id: str | None = None, tenant: str | None = None,
            since: datetime | None = None) -> list[dict]:
    query = select(RequestRecord).order_by(RequestRecord.id)
    if request_id is not None:
        query = query.where(RequestRecord.request_id == request_id)
    if tenant is not None:
        query = query.where(RequestRecord.tenant == tenant)
    if since is not None:
        query = query.where(RequestRecord.received_at >= since)
    with transaction(engine) as session:
        return [_as_dict(row) for row in session.scalars(query)]


def export(engine: Engine, out: IO[str], fmt: str = "jsonl", tenant: str | None = None,
           since: datetime | None = None) -> int:
    """Write the log as JSON lines or CSV (a header, then one line per record); returns the number of records."""
    rows = records(engine, tenant=tenant, since=since)
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    else:
        raise ValueError(f"unknown export format {fmt!r}: use jsonl or csv")
    return len(rows)


def _as_dict(row: RequestRecord) -> dict:
    values = {name: getattr(row, name) for name in EXPORT_FIELDS}
    values["received_at"] = row.received_at.isoformat()
    return values
