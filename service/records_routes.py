"""The trust-and-safety records over HTTP (/v1/records/...): a thin layer over `detector.records.api.Records`.

Every route needs an API key like the rest of /v1 (the gateway's `endpoint` wrapper: auth, rate limit, request log).
The acting reviewer is the `X-Reviewer` header, passed to the facade as `actor`; the facade decides what each role
may do and answers `RecordsError(status, message)`, which becomes that HTTP status with its JSON body. App reviews
scan their samples through the scan worker, so the gateway process loads no models.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import anyio
import bentoml
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from detector.media.types import MediaInput
from detector.records.api import Records, RecordsError
from detector.records.db import open_database
from detector.records.requestlog import LogEntry

from .gateway import ApiError, Outcome, Parsed, endpoint
from .settings import SETTINGS
from .worker import ScanItem

if TYPE_CHECKING:
    from detector.records import keys

    from .gateway import Gateway

COMPLAINTS_OPEN = bentoml.metrics.Gauge(
    name="detector_records_complaints_open",
    documentation="Complaints not yet resolved or rejected (as of the last complaints request)",
    multiprocess_mode="livemostrecent",        # one value, not one per process
)
COMPLAINTS_OVERDUE = bentoml.metrics.Gauge(
    name="detector_records_complaints_overdue",
    documentation="Open complaints past a deadline, by deadline (as of the last complaints request)",
    labelnames=["deadline"],
    multiprocess_mode="livemostrecent",
)

Answer = Response | dict | list                  # a response, or what becomes its JSON body
RecordsCall = Callable[[Records, Request, "Body", str | None], Awaitable[Answer]]


@dataclass
class Body:
    """A request's inputs: JSON object fields, or multipart form fields plus files (name, bytes)."""

    fields: dict
    files: list[tuple[str, bytes]]

    def one_file(self) -> bytes:
        if len(self.files) != 1:
            raise RecordsError(400, f"send exactly one `file` part (got {len(self.files)})")
        return self.files[0][1]

    def json_field(self, name: str) -> Any:
        """A form field that carries JSON (e.g. `identity`, `result`); JSON bodies carry it as is."""
        value = self.fields.get(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise RecordsError(400, f"{name} must be JSON") from None


class WorkerScanner:
    """The facade's scanner for app reviews: samples go through the batched scan worker. Called from the facade's
    worker thread, so it hops back to the event loop for the call."""

    def __init__(self, gateway) -> None:
        self.gateway = gateway

    def scan(self, inputs: list[MediaInput]) -> list["ScannedSample"]:
        items = [ScanItem(name=i.source, data=i.data, text=i.text, declared_ai=i.declared_ai) for i in inputs]
        results = anyio.from_thread.run(lambda: self.gateway.worker.to_async.scan(items=items))
        return [ScannedSample(result) for result in results]


@dataclass
class ScannedSample:
    result: dict

    def to_dict(self) -> dict:
        return self.result


_records: Records | None = None
_records_lock = threading.Lock()


def _open(gateway) -> Records:
    """One facade per gateway process, on the service's database."""
    global _records
    with _records_lock:
        if _records is None:
            _records = Records(open_database(SETTINGS.database_url), scanner=WorkerScanner(gateway))
        return _records


async def _body(gateway, request: Request) -> Body:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        parsed: Parsed = await gateway.parse(request)
        files = [(u.name, u.raw) for u in parsed.uploads]
        return Body({k: v for k, v in parsed.options.items() if k not in request.query_params}, files)
    await gateway._read_body(request)                  # the same size limit as every upload
    if content_type == "application/json":
        try:
            payload = json.loads(request._body or b"{}")
        except ValueError as exc:
            raise ApiError(400, f"invalid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "the JSON body must be an object")
        return Body(payload, [])
    return Body({}, [])


def records_endpoint(name: str, call: RecordsCall) -> Callable[[Request], Awaitable[Response]]:
    """The gateway's endpoint (key, rate limit, request log) around a facade call; RecordsError -> its status."""

    async def handler(gateway: Gateway, request: Request, principal: keys.Principal) -> Outcome:
        actor = request.headers.get("x-reviewer") or None
        body = await _body(gateway, request)
        records = await anyio.to_thread.run_sync(_open, gateway)
        try:
            answer = await call(records, request, body, actor)
        except RecordsError as error:
            return Outcome(JSONResponse(error.to_dict(), error.status),
                           [LogEntry(status_code=error.status, error=error.message)])
        if name.startswith("records/complaints"):
            await anyio.to_thread.run_sync(_update_gauges, records)
        response = answer if isinstance(answer, Response) else JSONResponse(answer)
        return Outcome(response, [LogEntry(status_code=response.status_code)])

    handler.__doc__ = call.__doc__
    handler.__name__ = call.__name__
    return endpoint(name, "scan")(handler)


def _update_gauges(records: Records) -> None:
    figures = records.metrics()
    COMPLAINTS_OPEN.set(figures["complaints_open"])
    COMPLAINTS_OVERDUE.labels(deadline="acknowledgement").set(figures["complaints_ack_overdue"])
    COMPLAINTS_OVERDUE.labels(deadline="resolution").set(figures["complaints_resolution_overdue"])


def _sync(function, *args):
    return anyio.to_thread.run_sync(function, *args)


# ---- banks -------------------------------------------------------------------------------------------------------

async def create_bank(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Create a hash bank (admin); JSON {name, description}."""
    return await _sync(records.create_bank, {**body.fields, "actor": actor})


async def list_banks(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: The banks and their entry counts by signal type."""
    return await _sync(records.list_banks)


async def add_bank_entry(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Add signals to a bank (admin); JSON {signals, labels}, or a multipart `file` to hash."""
    payload = {**body.fields, "actor": actor, "bank": request.path_params["bank"]}
    if body.files:
        payload.update(await _sync(records.hash_media, body.one_file()))
    return await _sync(records.add_to_bank, payload)


async def remove_bank_entry(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Remove one entry from a bank (admin)."""
    return await _sync(records.remove_bank_entry, {"actor": actor, **request.path_params})


async def export_bank(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: A bank as HMA-style CSV (signal_type, signal, labels)."""
    text = await _sync(records.export_bank, request.path_params["bank"])
    return PlainTextResponse(text, media_type="text/csv")


async def import_bank(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Import HMA-style CSV into a bank (admin); the body is the CSV text, `labels` query optional."""
    csv_text = body.fields.get("csv")
    if csv_text is None:
        try:
            csv_text = (await request.body()).decode("utf-8")
        except UnicodeDecodeError:
            raise RecordsError(400, "the CSV must be UTF-8") from None
    payload = {"actor": actor, "bank": request.path_params["bank"], "csv": csv_text,
               "labels": request.query_params.get("labels")}
    return await _sync(records.import_bank, payload)


async def lookup(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Bank matches for an uploaded `file`, or for JSON {signals} computed elsewhere."""
    payload = await _sync(records.hash_media, body.one_file()) if body.files else body.fields
    return await _sync(records.lookup, payload)


# ---- cases -------------------------------------------------------------------------------------------------------

async def open_case(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Open a case (reviewer) from an uploaded `file` and its scan `result` (JSON), or manually."""
    payload = {**body.fields, "actor": actor, "result": body.json_field("result")}
    data = body.one_file() if body.files else None
    return await _sync(records.open_case, payload, data)


async def get_case(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: A case with its evidence list (reviewer; audited)."""
    return await _sync(records.get_case, {"actor": actor, "case_id": request.path_params["case_id"]})


async def add_case_evidence(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Attach an uploaded `file` to a case (reviewer); form fields `kind`, `name`, `media_type`."""
    name, content = body.files[0] if len(body.files) == 1 else ("", body.one_file())
    payload = {"name": name, **body.fields, "actor": actor, "case_id": request.path_params["case_id"]}
    return await _sync(records.add_evidence, payload, content)


async def download_evidence(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: One evidence item's content, as stored (reviewer; audited)."""
    media_type, content = await _sync(records.evidence, {"actor": actor, **request.path_params})
    return Response(content, media_type=media_type)


async def decide_case(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Decide a case; JSON {decision, notes, bank, labels, refutation}; banking needs an admin."""
    return await _sync(records.decide_case, {**body.fields, "actor": actor,
                                             "case_id": request.path_params["case_id"]})


async def regulator_report(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Cases decided between `start` and `end` (query), as JSON or with format=csv."""
    payload = {"actor": actor, "start": request.query_params.get("start"), "end": request.query_params.get("end")}
    if request.query_params.get("format") == "csv":
        return PlainTextResponse(await _sync(records.regulator_report_csv, payload), media_type="text/csv")
    return await _sync(records.regulator_report, payload)


# ---- complaints --------------------------------------------------------------------------------------------------

async def set_procedure(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Set a complaint category and its deadlines in hours (admin)."""
    return await _sync(records.set_procedure, {**body.fields, "actor": actor,
                                               "category": request.path_params["category"]})


async def list_procedures(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Complaint categories and their deadlines."""
    return await _sync(records.procedures)


async def file_complaint(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: File a complaint; JSON {category, contact, message, subject, case_id}; answers its status token."""
    return JSONResponse(await _sync(records.file_complaint, body.fields), 201)


async def complaint_status(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: A complaint's status and history by its token (no contact details)."""
    return await _sync(records.complaint_status, request.path_params["token"])


async def update_complaint(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Move a complaint to a new status (reviewer); JSON {status, note}."""
    return await _sync(records.update_complaint, {**body.fields, "actor": actor,
                                                  "complaint_id": request.path_params["complaint_id"]})


async def overdue_complaints(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Open complaints past a deadline."""
    return await _sync(records.overdue_complaints)


# ---- app reviews -------------------------------------------------------------------------------------------------

async def submit_app_review(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Review an app; multipart `identity` (JSON) and sample files; the reviewer header is the submitter."""
    payload = {"submitter": actor, "identity": body.json_field("identity")}
    return JSONResponse(await _sync(records.submit_app_review, payload, body.files), 201)


async def get_app_review(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: An app review report."""
    return await _sync(records.get_app_review, request.path_params["review_id"])


# ---- consent -----------------------------------------------------------------------------------------------------

async def register_consent(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Register consent with a face image or voice clip `file` and subject, kind, scope, expires_at."""
    return JSONResponse(await _sync(records.register_consent, body.fields, body.one_file()), 201)


async def consent_status(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: A consent record by its token."""
    return await _sync(records.consent_status, request.path_params["token"])


async def withdraw_consent(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Withdraw consent; the stored likeness is deleted."""
    return await _sync(records.withdraw_consent, request.path_params["token"])


async def check_consent(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Consent records whose likeness appears in an uploaded `file`."""
    return await _sync(records.check_consent, body.one_file())


# ---- audit -------------------------------------------------------------------------------------------------------

async def verify_audit(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Check the audit chain; lists edited or deleted entries."""
    return await _sync(records.verify_audit)


async def audit_entries(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Audit entries between `since` and `until` (query, ISO dates), at most `limit` (admin)."""
    await _sync(records.require, actor, "admin")
    return await _sync(records.audit_entries, dict(request.query_params))


async def set_retention(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Set the audit retention in days (admin; never under the legal minimum); JSON {days}."""
    return await _sync(records.set_retention, {**body.fields, "actor": actor})


async def prune_audit(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Delete audit entries older than the retention (admin); the pruning itself is audited."""
    return await _sync(records.prune_audit, {"actor": actor})


# ---- reviewers ---------------------------------------------------------------------------------------------------

async def add_reviewer(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Add a reviewer (admin); JSON {name, role}. The first admin is made with `detector reviewer add`."""
    if not actor:       # over HTTP nobody bootstraps the first admin: an API key alone must not make one
        raise RecordsError(401, "this action needs a reviewer identity (X-Reviewer)")
    return await _sync(records.add_reviewer, {**body.fields, "actor": actor})


async def list_reviewers(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Reviewers, their roles and whether they are active."""
    return await _sync(records.list_reviewers)


async def update_reviewer(records: Records, request: Request, body: Body, actor: str | None) -> Answer:
    """summary: Change a reviewer's role or deactivate them (admin); JSON {role, active}."""
    return await _sync(records.update_reviewer, {**body.fields, "actor": actor, "name": request.path_params["name"]})


def _route(path: str, name: str, call: RecordsCall, method: str) -> Route:
    return Route(f"/v1/records{path}", records_endpoint(f"records/{name}", call), methods=[method])


RECORDS_ROUTES = [
    _route("/banks", "banks", create_bank, "POST"),
    _route("/banks", "banks", list_banks, "GET"),
    _route("/banks/{bank}/entries", "banks/entries", add_bank_entry, "POST"),
    _route("/banks/{bank}/entries/{entry_id:int}", "banks/entries", remove_bank_entry, "DELETE"),
    _route("/banks/{bank}/export", "banks/export", export_bank, "GET"),
    _route("/banks/{bank}/import", "banks/import", import_bank, "POST"),
    _route("/lookup", "lookup", lookup, "POST"),
    _route("/cases", "cases", open_case, "POST"),
    _route("/cases/{case_id:int}", "cases/get", get_case, "GET"),
    _route("/cases/{case_id:int}/evidence", "cases/evidence", add_case_evidence, "POST"),
    _route("/cases/{case_id:int}/evidence/{evidence_id:int}", "cases/evidence", download_evidence, "GET"),
    _route("/cases/{case_id:int}/decision", "cases/decision", decide_case, "POST"),
    _route("/reports/regulator", "reports/regulator", regulator_report, "GET"),
    _route("/procedures", "complaints/procedures", list_procedures, "GET"),
    _route("/procedures/{category}", "complaints/procedures", set_procedure, "PUT"),
    _route("/complaints", "complaints", file_complaint, "POST"),
    _route("/complaints/overdue", "complaints/overdue", overdue_complaints, "GET"),
    _route("/complaints/{complaint_id:int}/status", "complaints/update", update_complaint, "POST"),
    _route("/complaints/{token}", "complaints/status", complaint_status, "GET"),
    _route("/app-reviews", "app-reviews", submit_app_review, "POST"),
    _route("/app-reviews/{review_id:int}", "app-reviews/get", get_app_review, "GET"),
    _route("/consents", "consents", register_consent, "POST"),
    _route("/consents/check", "consents/check", check_consent, "POST"),
    _route("/consents/{token}", "consents/status", consent_status, "GET"),
    _route("/consents/{token}", "consents/withdraw", withdraw_consent, "DELETE"),
    _route("/audit/verify", "audit/verify", verify_audit, "GET"),
    _route("/audit/entries", "audit/entries", audit_entries, "GET"),
    _route("/audit/retention", "audit/retention", set_retention, "PUT"),
    _route("/audit/prune", "audit/prune", prune_audit, "POST"),
    _route("/reviewers", "reviewers", add_reviewer, "POST"),
    _route("/reviewers", "reviewers", list_reviewers, "GET"),
    _route("/reviewers/{name}", "reviewers", update_reviewer, "PATCH"),
]
