"""A plain-Python facade over the records: JSON-like dicts in, dicts out, `RecordsError(status, message)` for bad
input or forbidden actions. The CLI and the HTTP service are thin layers over this class; each call is one
transaction, so a refused call leaves nothing behind.

Payload fields name the acting reviewer as "actor" where a role is needed (reviewer; admin for banks, retention,
procedures and reviewers). Binary inputs (files, samples, heatmaps) are separate `bytes` arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import appreview, audit, bank, cases, complaints, consent, hashing
from .common import Clock, RecordsError, decode_upload, iso, parse_time, utcnow
from .db import Base, open_database, transaction
from .hook import BankMatcher

if TYPE_CHECKING:
    from ..scan import Scanner

__all__ = ["Records", "RecordsError", "open_records"]


def open_records(url: str | None = None, clock: Clock = utcnow) -> "Records":
    """The records on the database at `url` (default: DETECTOR_DATABASE_URL or the SQLite file under var/)."""
    return Records(open_database(url), clock=clock)


class Records:
    def __init__(self, engine: Engine, clock: Clock = utcnow, scanner=None):
        Base.metadata.create_all(engine)       # every records table is declared by the imports above
        self.engine = engine
        self.clock = clock
        self.index = bank.BankIndex(engine)
        self._scanner = scanner
        with transaction(engine) as session:
            complaints.ensure_procedures(session)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        try:
            with transaction(self.engine) as session:
                yield session
        except IntegrityError as exc:          # a concurrent duplicate slipped past the checks
            raise RecordsError(409, "this conflicts with an existing record") from exc
        finally:
            self.index.invalidate()            # whatever this call changed, the next lookup sees it

    def now(self) -> datetime:
        return self.clock()

    # ---- scanner hooks ---------------------------------------------------------------------------------------

    def bank_matcher(self, record: bool = True) -> BankMatcher:
        return BankMatcher(self.engine, self.index, record=record, clock=self.clock)

    def consent_checker(self, verdicts: tuple[str, ...] = ("synthetic",)) -> consent.ConsentChecker:
        return consent.ConsentChecker(self.engine, verdicts=verdicts, clock=self.clock)

    def scan_hooks(self, record_matches: bool = True) -> list:
        """The hooks every scanning caller adds: hash-bank matches (logged as re-upload hits unless
        `record_matches` is off) and the consent registry."""
        return [self.bank_matcher(record=record_matches), self.consent_checker()]

    def scanner(self) -> Scanner:
        """A Scanner with the bank and consent hooks, created on first use."""
        if self._scanner is None:
            from ..scan import Scanner

            self._scanner = Scanner(hooks=self.scan_hooks())
        return self._scanner

    # ---- reviewers and audit ---------------------------------------------------------------------------------

    def add_reviewer(self, payload: dict) -> dict:
        with self._tx() as s:
            reviewer = audit.add_reviewer(s, payload.get("actor"), payload.get("name"), payload.get("role"),
                                          self.now())
            return {"name": reviewer.name, "role": reviewer.role}

    def update_reviewer(self, payload: dict) -> dict:
        with self._tx() as s:
            reviewer = audit.update_reviewer(s, payload.get("actor"), payload.get("name"), self.now(),
                                             role=payload.get("role"), active=payload.get("active"))
            return {"name": reviewer.name, "role": reviewer.role, "active": reviewer.active}

    def list_reviewers(self) -> dict:
        with self._tx() as s:
            return {"reviewers": audit.reviewers(s)}

    def require(self, actor: str | None, role: str = "reviewer") -> None:
        """Raise RecordsError unless `actor` is an active reviewer holding `role`."""
        with self._tx() as s:
            audit.require_role(s, actor, role)

    def verify_audit(self) -> dict:
        with self._tx() as s:
            return audit.verify(s).to_dict()

    def set_retention(self, payload: dict) -> dict:
        with self._tx() as s:
            return {"retention_days": audit.set_retention(s, payload.get("actor"), payload.get("days"), self.now())}

    def prune_audit(self, payload: dict) -> dict:
        with self._tx() as s:
            return audit.prune(s, payload.get("actor"), self.now())

    def audit_entries(self, payload: dict) -> dict:
        since = parse_time(payload["since"], "since") if payload.get("since") else None
        until = parse_time(payload["until"], "until") if payload.get("until") else None
        with self._tx() as s:
            return {"entries": audit.entries(s, since, until, _int(payload.get("limit", 1000), "limit"))}

    # ---- banks -----------------------------------------------------------------------------------------------

    def create_bank(self, payload: dict) -> dict:
        with self._tx() as s:
            created = bank.create_bank(s, payload.get("actor"), payload.get("name"), payload.get("description"),
                                       self.now())
            return {"name": created.name, "description": created.description, "created_at": iso(created.created_at)}

    def list_banks(self) -> dict:
        with self._tx() as s:
            return {"banks": bank.list_banks(s)}

    def add_to_bank(self, payload: dict) -> dict:
        signals = payload.get("signals")
        if not isinstance(signals, list) or not all(isinstance(x, dict) for x in signals):
            raise RecordsError(400, "signals must be a list of {signal_type, value} objects")
        pairs = [(x.get("signal_type"), x.get("value")) for x in signals]
        with self._tx() as s:
            return bank.add_signals(s, payload.get("actor"), payload.get("bank"), pairs, payload.get("labels"),
                                    self.now())

    def remove_bank_entry(self, payload: dict) -> dict:
        with self._tx() as s:
            bank.remove_entry(s, payload.get("actor"), _int(payload.get("entry_id"), "entry_id"), self.now(),
                              payload.get("bank"))
        return {"removed": payload.get("entry_id")}

    def export_bank(self, name: str) -> str:
        """HMA-style CSV: signal_type,signal,labels."""
        with self._tx() as s:
            return bank.export_csv(s, name)

    def import_bank(self, payload: dict) -> dict:
        text = payload.get("csv")
        if not isinstance(text, str):
            raise RecordsError(400, "csv must be the CSV text")
        with self._tx() as s:
            return bank.import_csv(s, payload.get("actor"), payload.get("bank"), text, self.now(),
                                   payload.get("labels"))

    def hash_media(self, data: bytes) -> dict:
        """The bank signals of a file (to add to a bank by hash, without keeping the file)."""
        return {"signals": [x.to_dict() for x in hashing.signals_for(decode_upload(data))]}

    def lookup(self, payload: dict) -> dict:
        """Matches for given signals, without a scan (e.g. hashes computed on a client)."""
        signals = payload.get("signals")
        if not isinstance(signals, list) or not signals:
            raise RecordsError(400, "signals must be a non-empty list of {signal_type, value} objects")
        parsed = []
        for number, item in enumerate(signals, 1):
            if not isinstance(item, dict):
                raise RecordsError(400, f"signal {number}: expected an object with signal_type and value")
            try:
                signal_type = item.get("signal_type")
                parsed.append(hashing.Signal(signal_type, hashing.validate(signal_type, item.get("value"))))
            except hashing.SignalError as exc:
                raise RecordsError(400, f"signal {number}: {exc}") from exc
        return {"matches": self.index.lookup(parsed)}

    # ---- cases -----------------------------------------------------------------------------------------------

    def open_case(self, payload: dict, data: bytes | None = None, heatmaps: list[tuple[str, bytes]] = ()) -> dict:
        with self._tx() as s:
            case = cases.open_case(s, payload.get("actor"), self.now(), result=payload.get("result"), data=data,
                                   title=payload.get("title"), notes=payload.get("notes"), heatmaps=heatmaps)
            return cases.case_dict(s, case)

    def add_evidence(self, payload: dict, content: bytes) -> dict:
        with self._tx() as s:
            item = cases.add_evidence(s, payload.get("actor"), _int(payload.get("case_id"), "case_id"),
                                      payload.get("kind"), payload.get("name"),
                                      payload.get("media_type", "application/octet-stream"), content, self.now())
            return {"id": item.id, "sha256": item.sha256, "size": item.size}

    def decide_case(self, payload: dict) -> dict:
        with self._tx() as s:
            case = cases.decide(s, payload.get("actor"), _int(payload.get("case_id"), "case_id"),
                                payload.get("decision"), self.now(), notes=payload.get("notes"),
                                bank_name=payload.get("bank"), labels=payload.get("labels"),
                                refutation=payload.get("refutation"))
            return cases.case_dict(s, case)

    def get_case(self, payload: dict) -> dict:
        """A case with its evidence list; reading it is a reviewer action and is audited."""
        with self._tx() as s:
            return cases.view_case(s, payload.get("actor"), _int(payload.get("case_id"), "case_id"), self.now())

    def evidence(self, payload: dict) -> tuple[str, bytes]:
        """(media type, content) of one evidence item; audited like reading the case."""
        with self._tx() as s:
            item = cases.view_evidence(s, payload.get("actor"), _int(payload.get("case_id"), "case_id"),
                                       _int(payload.get("evidence_id"), "evidence_id"), self.now())
            return item.media_type, item.content

    def regulator_report(self, payload: dict) -> dict:
        start = parse_time(payload.get("start"), "start")
        end = parse_time(payload.get("end"), "end")
        with self._tx() as s:
            return cases.regulator_report(s, payload.get("actor"), start, end, self.now())

    def regulator_report_csv(self, payload: dict) -> str:
        return cases.report_csv(self.regulator_report(payload))

    # ---- complaints ------------------------------------------------------------------------------------------

    def procedures(self) -> dict:
        with self._tx() as s:
            return {"procedures": complaints.procedures(s)}

    def set_procedure(self, payload: dict) -> dict:
        with self._tx() as s:
            return complaints.set_procedure(s, payload.get("actor"), payload.get("category"),
                                            payload.get("description"), payload.get("acknowledge_within_hours"),
                                            payload.get("resolve_within_hours"), self.now())

    def file_complaint(self, payload: dict) -> dict:
        case_id = payload.get("case_id")
        with self._tx() as s:
            complaint = complaints.file_complaint(
                s, self.now(), category=payload.get("category"), contact=payload.get("contact"),
                message=payload.get("message"), subject=payload.get("subject"),
                case_id=None if case_id is None else _int(case_id, "case_id"))
            return {"id": complaint.id, "token": complaint.token, "status": complaint.status,
                    "acknowledge_by": iso(complaint.ack_due), "resolve_by": iso(complaint.resolve_due)}

    def complaint_status(self, token: str) -> dict:
        with self._tx() as s:
            return complaints.status_by_token(s, token, self.now())

    def update_complaint(self, payload: dict) -> dict:
        with self._tx() as s:
            complaint = complaints.transition(s, payload.get("actor"),
                                              _int(payload.get("complaint_id"), "complaint_id"),
                                              payload.get("status"), self.now(), payload.get("note"))
            return complaints.status_by_token(s, complaint.token, self.now())

    def overdue_complaints(self) -> dict:
        with self._tx() as s:
            return {"overdue": complaints.overdue(s, self.now())}

    def metrics(self) -> dict:
        with self._tx() as s:
            return complaints.metrics(s, self.now())

    # ---- app review ------------------------------------------------------------------------------------------

    def submit_app_review(self, payload: dict, samples: list[tuple[str, bytes]]) -> dict:
        scanner = self.scanner()
        with self._tx() as s:
            review = appreview.submit(s, payload.get("submitter"), payload.get("identity"), samples, scanner,
                                      self.now())
            return appreview.get_review(s, review.id)

    def get_app_review(self, review_id: int) -> dict:
        with self._tx() as s:
            return appreview.get_review(s, _int(review_id, "review_id"))

    # ---- consent ---------------------------------------------------------------------------------------------

    def register_consent(self, payload: dict, data: bytes) -> dict:
        expires = parse_time(payload["expires_at"], "expires_at") if payload.get("expires_at") else None
        with self._tx() as s:
            record = consent.register(s, self.now(), subject=payload.get("subject"), kind=payload.get("kind"),
                                      data=data, scope=payload.get("scope"), expires_at=expires,
                                      representative=payload.get("representative"))
            return {**consent.consent_dict(record, self.now()), "token": record.token}

    def consent_status(self, token: str) -> dict:
        with self._tx() as s:
            return consent.get(s, token, self.now())

    def withdraw_consent(self, token: str) -> dict:
        with self._tx() as s:
            consent.withdraw(s, token, self.now())
        return {"deleted": True}

    def check_consent(self, data: bytes) -> dict:
        media = decode_upload(data)
        with self._tx() as s:
            return consent.check_media(s, media, self.now())


def _int(value, what: str) -> int:
    if isinstance(value, bool):
        raise RecordsError(400, f"{what} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise RecordsError(400, f"{what} must be an integer") from exc
