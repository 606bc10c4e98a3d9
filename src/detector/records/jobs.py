"""Long-media jobs whose state survives restarts: queued -> running -> done | failed, plus webhook delivery state.

The uploaded content waits in a spool file named by the row. A runner claims a queued job atomically, so a job handed
out twice (e.g. after a restart) still runs once; jobs left `running` by a runner that died are queued again.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from sqlalchemy import DateTime, Engine, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, transaction, utcnow

WEBHOOK_STATES = ("none", "pending", "delivered", "failed")
PRIVATE_FIELDS = ("tenant", "spool_path", "callback_url", "declared_ai", "explain")


class JobRecord(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    filename: Mapped[str] = mapped_column(String(500))
    content_sha256: Mapped[str] = mapped_column(String(64))
    modality: Mapped[str] = mapped_column(String(16))
    spool_path: Mapped[str] = mapped_column(String(1000))
    declared_ai: Mapped[int] = mapped_column(Integer, default=0)
    explain: Mapped[int] = mapped_column(Integer, default=0)             # heatmaps, segments and spans
    callback_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)                 # how many times a runner claimed it
    runner_boot: Mapped[str | None] = mapped_column(String(32), nullable=True)
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)  # the ScanResult contract
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_state: Mapped[str] = mapped_column(String(16), default="none")
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    webhook_error: Mapped[str | None] = mapped_column(Text, nullable=True)


def new_job_id() -> str:
    return uuid.uuid4().hex


def create_job(engine: Engine, job_id: str, tenant: str, filename: str, content_sha256: str, modality: str,
               spool_path: str, callback_url: str | None = None, declared_ai: bool = False,
               explain: bool = False) -> None:
    with transaction(engine) as session:
        session.add(JobRecord(id=job_id, tenant=tenant, filename=filename, content_sha256=content_sha256,
                              modality=modality, spool_path=spool_path, callback_url=callback_url,
                              declared_ai=int(declared_ai), explain=int(explain),
                              webhook_state="pending" if callback_url else "none"))


def claim(engine: Engine, job_id: str, runner_boot: str) -> dict | None:
    """Move a queued job to running for this runner; None when it is not queued (done, failed, or taken)."""
    with transaction(engine) as session:
        taken = session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id, JobRecord.state == "queued")
            .values(state="running", started_at=utcnow(), runner_boot=runner_boot, runs=JobRecord.runs + 1)
        ).rowcount
        if not taken:
            return None
        return _as_dict(session.get(JobRecord, job_id), with_private=True)


def finish(engine: Engine, job_id: str, result: dict) -> None:
    _close(engine, job_id, "done", result_json=json.dumps(result, ensure_ascii=False))


def fail(engine: Engine, job_id: str, error: str) -> None:
    _close(engine, job_id, "failed", error=error)


def record_webhook(engine: Engine, job_id: str, state: str, attempts: int, error: str | None = None) -> None:
    if state not in WEBHOOK_STATES:
        raise ValueError(f"unknown webhook state {state!r}")
    with transaction(engine) as session:
        session.execute(update(JobRecord).where(JobRecord.id == job_id)
                        .values(webhook_state=state, webhook_attempts=attempts, webhook_error=error))


def get(engine: Engine, job_id: str, tenant: str | None = None, with_private: bool = False) -> dict | None:
    """A job as its owner sees it (None when unknown or owned by another tenant); `with_private` adds
    PRIVATE_FIELDS, which never leave the service."""
    with transaction(engine) as session:
        row = session.get(JobRecord, job_id)
        if row is None or (tenant is not None and row.tenant != tenant):
            return None
        return _as_dict(row, with_private)


def public_view(job: dict) -> dict:
    return {name: value for name, value in job.items() if name not in PRIVATE_FIELDS}


def requeue_interrupted(engine: Engine, runner_boot: str, max_runs: int = 3) -> list[str]:
    """Queue again the jobs a previous runner left running (failing those already tried `max_runs` times, which
    likely took the runner down); return every queued job id, oldest first."""
    interrupted = (JobRecord.state == "running", JobRecord.runner_boot != runner_boot)
    with transaction(engine) as session:
        session.execute(update(JobRecord).where(*interrupted, JobRecord.runs >= max_runs)
                        .values(state="failed", finished_at=utcnow(),
                                error=f"the runner stopped during each of {max_runs} attempts"))
        session.execute(update(JobRecord).where(*interrupted).values(state="queued"))
        return list(session.scalars(select(JobRecord.id).where(JobRecord.state == "queued")
                                    .order_by(JobRecord.created_at)))


def pending_webhooks(engine: Engine) -> list[str]:
    """Finished jobs whose webhook has not been delivered nor given up on (e.g. the runner restarted meanwhile)."""
    with transaction(engine) as session:
        return list(session.scalars(select(JobRecord.id).where(JobRecord.state.in_(("done", "failed")),
                                                              JobRecord.webhook_state == "pending")))


def _close(engine: Engine, job_id: str, state: str, **values) -> None:
    with transaction(engine) as session:
        session.execute(update(JobRecord).where(JobRecord.id == job_id)
                        .values(state=state, finished_at=utcnow(), **values))


def _as_dict(row: JobRecord, with_private: bool = False) -> dict:
    job = {
        "job_id": row.id, "state": row.state, "filename": row.filename, "modality": row.modality,
        "sha256": row.content_sha256,
        "created_at": _iso(row.created_at), "started_at": _iso(row.started_at), "finished_at": _iso(row.finished_at),
        "runs": row.runs, "error": row.error,
        "webhook": {"state": row.webhook_state, "attempts": row.webhook_attempts, "error": row.webhook_error},
        "result": json.loads(row.result_json) if row.result_json else None,
    }
    if with_private:
        job.update(tenant=row.tenant, spool_path=row.spool_path, callback_url=row.callback_url,
                   declared_ai=bool(row.declared_ai), explain=bool(row.explain))
    return job


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
