"""The public service: authenticated HTTP API (/v1), the moderator page (/ui) and OpenAPI, in front of the batched
model service (ScanWorker) and the long-media job service (LongMediaJobs).

Routing and auth live in a Starlette app mounted on the BentoML service; every model call goes through the
ScanWorker's batchable API, so concurrent requests share batches. BentoML's own /livez, /readyz and /metrics stay
open; everything under /v1 needs a key, except the OpenAPI document. The page's files are public (they carry no
data); the page asks for a key and sends it with each call.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Awaitable, Callable, TypeVar

import aiohttp
import anyio
import av
import bentoml
from _bentoml_impl.client import RemoteProxy
from bentoml._internal.configuration.containers import BentoMLContainer
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles

from detector.media import MediaError, sniff
from detector.records import jobs, keys, requestlog
from detector.records.db import utcnow
from detector.records.requestlog import LogEntry
from detector.report import ScanResult

from .jobs import LongMediaJobs
from .settings import SETTINGS
from .storage import open_service_database
from .worker import ScanItem, ScanWorker

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
WARM_UP_CALLS = 24                  # enough sequential calls for BentoML's batcher to finish its training phase
# How a request dies on a pooled connection that the local service is closing (uvicorn drops idle connections after
# 5 s, BentoML's client keeps them 15 s): the kernel resets a connection closed with unread data.
UNREAD_REQUEST_ERRNOS = (errno.ECONNRESET, errno.EPIPE)
Result = TypeVar("Result")
MAX_REQUEST_ID = 64

SCAN_LATENCY = bentoml.metrics.Histogram(
    name="detector_scan_latency_seconds",
    documentation="Request latency per scanned item, by modality and endpoint",
    labelnames=["modality", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REQUESTS = bentoml.metrics.Counter(
    name="detector_requests_total",
    documentation="API requests by endpoint and HTTP status",
    labelnames=["endpoint", "status"],
)


class GroupCommitLog:
    """Request records written by one writer, many requests per commit. Each request still waits until its rows are
    committed before it answers; one writer also spares SQLite's sleeping lock retries between concurrent writers."""

    def __init__(self, db) -> None:
        self.db = db
        self.pending: list[tuple[requestlog.RequestLog, asyncio.Future]] = []
        self.wake = asyncio.Event()
        self.writer: asyncio.Task | None = None

    async def write(self, log: requestlog.RequestLog) -> None:
        if self.writer is None:
            self.writer = asyncio.get_running_loop().create_task(self._run())
        done = asyncio.get_running_loop().create_future()
        self.pending.append((log, done))
        self.wake.set()
        await done

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            group, self.pending = self.pending, []
            try:
                await anyio.to_thread.run_sync(requestlog.record_requests, self.db, [log for log, _ in group])
            except Exception as exc:                   # each waiting request fails with it: no silent loss
                for _, done in group:
                    done.set_exception(exc)
            else:
                for _, done in group:
                    done.set_result(None)


class ApiError(Exception):
    """A refusal with its HTTP status; `entries` are the log rows of the items it concerned, if known."""

    def __init__(self, status: int, message: str, headers: dict | None = None,
                 entries: list[LogEntry] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
        self.entries = entries or [LogEntry(status_code=status, error=message)]

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.message, "status": self.status}, self.status, headers=self.headers)


async def call_local_service(call: Callable[[], Awaitable[Result]]) -> Result:
    """`call()` to the scan worker or the job service, sent once more when the connection it went out on was reset:
    that service had closed the pooled connection (its keep-alive timeout) as the request crossed, so it never read
    it and nothing runs twice. A service that dies while working ends the connection cleanly and is not retried.
    """
    try:
        return await call()
    except aiohttp.ClientError as exc:
        if not _reset_unread(exc):
            raise
        logger.warning("local service reset the connection the request went out on (%r); sending again", exc)
        return await call()


def _reset_unread(exc: BaseException | None) -> bool:
    """A reset or broken pipe anywhere in the chain (aiohttp wraps a reset met while writing the body)."""
    while exc is not None:
        if isinstance(exc, (ConnectionResetError, BrokenPipeError)) or \
                (isinstance(exc, OSError) and exc.errno in UNREAD_REQUEST_ERRNOS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@dataclass
class Upload:
    """One item of a request: file bytes or text."""

    name: str
    data: bytes | None = None
    text: str | None = None

    @property
    def raw(self) -> bytes:
        return self.data if self.data is not None else (self.text or "").encode("utf-8")

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


@dataclass
class Parsed:
    uploads: list[Upload]
    options: dict[str, str] = field(default_factory=dict)

    def flag(self, name: str) -> bool:
        return self.options.get(name, "").lower() in ("1", "true", "yes", "on")


@dataclass
class Outcome:
    response: Response
    entries: list[LogEntry]


Handler = Callable[["Gateway", Request, keys.Principal], Awaitable[Outcome]]


def endpoint(name: str, scope: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Auth, rate limit, error mapping and the request log around a handler. Every request gets its log rows,
    written before the response leaves."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            started, received = time.perf_counter(), utcnow()
            request_id = (request.headers.get("x-request-id") or uuid.uuid4().hex)[:MAX_REQUEST_ID]
            gateway: Gateway = bentoml.get_current_service()
            principal: keys.Principal | None = None
            try:
                principal = await gateway.admit(request, scope)
                outcome = await handler(gateway, request, principal)
            except ApiError as error:
                outcome = Outcome(error.response(), error.entries)
            except Exception as exc:                   # a bug: answer 500, keep serving, keep the record
                logger.exception("%s failed", name)
                message = f"internal error: {type(exc).__name__}"
                outcome = Outcome(JSONResponse({"error": message, "status": 500}, 500),
                                  [LogEntry(status_code=500, error=repr(exc))])
            seconds = time.perf_counter() - started
            await gateway.request_log.write(requestlog.RequestLog(
                request_id, principal.tenant if principal else None, name, seconds * 1000, outcome.entries,
                received))
            for entry in outcome.entries:
                if entry.item_index is not None:
                    SCAN_LATENCY.labels(modality=entry.modality or "unknown", endpoint=name).observe(seconds)
            REQUESTS.labels(endpoint=name, status=str(outcome.response.status_code)).inc()
            outcome.response.headers["X-Request-ID"] = request_id
            return outcome.response

        route.__doc__ = handler.__doc__               # the OpenAPI text
        route.__name__ = handler.__name__
        return route

    return wrap


# ---- handlers -------------------------------------------------------------------------------------------------

async def scan_any(gateway: "Gateway", request: Request, principal: keys.Principal) -> Outcome:
    """
    summary: Scan one file or text; the kind is judged from the content. Video and long audio become a job (202).
    requestBody:
      description: multipart/form-data with `file` or `text` (or a urlencoded `text` form); JSON {"text"};
        text/plain; or the raw file bytes.
    parameters:
      - {name: explain, in: query, schema: {type: boolean}, description: "heatmaps, segments and spans"}
      - {name: declared_ai, in: query, schema: {type: boolean}, description: "the uploader declared it AI-generated"}
    responses:
      200: {description: "a ScanResult (the same JSON as `detector scan --json`)"}
      202: {description: "a job (long media); poll /v1/jobs/{job_id}"}
      401: {description: "missing or invalid key"}
      403: {description: "revoked key, or scope not granted"}
      413: {description: "over the upload limit"}
      415: {description: "not a supported image, video, audio or text"}
      422: {description: 'a ScanResult with verdict "error" (corrupt or unreadable content)'}
      429: {description: "rate limit; see Retry-After"}
    """
    return await gateway.scan_single(request, principal, expected=None)


async def scan_image(gateway: "Gateway", request: Request, principal: keys.Principal) -> Outcome:
    """
    summary: Scan one image (JPEG, PNG, WebP, BMP, GIF); anything else is 415.
    responses:
      200: {description: "a ScanResult"}
      415: {description: "not an image"}
    """
    return await gateway.scan_single(request, principal, expected="image")


async def scan_audio(gateway: "Gateway", request: Request, principal: keys.Principal) -> Outcome:
    """
    summary: Scan one audio clip; audio longer than the synchronous limit becomes a job (202).
    responses:
      200: {description: "a ScanResult"}
      202: {description: "a job"}
      415: {description: "not audio"}
    """
    return await gateway.scan_single(request, principal, expected="audio")


async def scan_text(gateway: "Gateway", request: Request, principal: keys.Principal) -> Outcome:
    """
    summary: Scan text, sent as JSON {"text"}, text/plain, or a multipart `text` field, text file or PDF.
    responses:
      200: {description: "a ScanResult"}
      415: {description: "not text"}
    """
    return await gateway.scan_single(request, principal, expected="text")


async def scan_batch(gateway: "Gateway", request: Request, principal: keys.Principal) -> Outcome:
    """
    summary: Scan up to DETECTOR_MAX_BATCH_FILES files and texts in one request; results come back in order.
    requestBody:
      description: multipart/form-data with repeated `file` (or `files`) and `text` parts, in order.
    responses:
      200: {description: '{"results": [ScanResult, ...]} in input order; bad items get verdict "error"'}
      413: {description: "too many items or bytes"}
    """
    parsed = await gateway.parse(request)
    if not parsed.uploads:
        raise ApiError(400, "send at least one `file` or `text` part")
    if len(parsed.uploads) > SETTINGS.max_batch_files:
        raise ApiError(413, f"{len(parsed.uploads)} items is over the batch limit of {SETTINGS.max_batch_files}")
    results: list[dict | None] = [None] * len(parsed.uploads)
    to_scan: list[int] = []
    for index, upload in enumerate(parsed.uploads):
        modality = gateway.modality(upload)
        if gateway.is_long_media(upload, modality):
            results[index] = ScanResult(
                path=upload.name, modality=modality, verdict="error", sha256=upload.sha256,
                reason="long media is scanned as a job: POST it to /v1/jobs", error_code="use_job").to_dict()
        else:
            to_scan.append(index)
    scanned = await gateway.run_worker([parsed.uploads[i] for i in to_scan], parsed, offset_indices=to_scan)
    for index, result in zip(to_scan, scanned):
        results[index] = result
    entries = [LogEntry.from_result(i, r) for i, r in enumerate(results)]
    return Outcome(JSONResponse({"results": results}), entries)


async def submit_job(gateway: "Gateway", request: Request, principal: keys.Principal) -> Outcome:
    """
    summary: Submit one file (video, long audio, or anything) as an asynchronous job.
    requestBody:
      description: multipart/form-data with `file` and optional `callback_url` (also accepted as a query parameter).
    responses:
      202: {description: 'the job: {"job_id", "state", ...}; poll /v1/jobs/{job_id}'}
    """
    parsed = await gateway.parse(request)
    upload = _single(parsed)
    return await gateway.start_job(upload, parsed, principal, gateway.classify(upload, None))


async def job_status(gateway: "Gateway", request: Request, principal: keys.Principal) -> Outcome:
    """
    summary: A job's state (queued, running, done, failed), its webhook delivery state and, when done, its result.
    responses:
      200: {description: "the job"}
      404: {description: "no such job for this key's tenant"}
    """
    job = await gateway.own_job(request, principal)
    return Outcome(JSONResponse(job), [LogEntry(status_code=200, job_id=job["job_id"])])


async def job_result(gateway: "Gateway", request: Request, principal: keys.Principal) -> Outcome:
    """
    summary: A finished job's ScanResult.
    responses:
      200: {description: "the ScanResult"}
      409: {description: "the job is not finished yet"}
      500: {description: "the job failed"}
    """
    job = await gateway.own_job(request, principal)
    if job["state"] == "failed":
        raise ApiError(500, job["error"] or "the job failed", entries=[
            LogEntry(status_code=500, job_id=job["job_id"], content_sha256=job["sha256"], error=job["error"])])
    if job["state"] != "done":
        raise ApiError(409, f"the job is {job['state']}", entries=[
            LogEntry(status_code=409, job_id=job["job_id"], content_sha256=job["sha256"])])
    entry = LogEntry.from_result(0, job["result"])
    entry.job_id = job["job_id"]
    return Outcome(JSONResponse(job["result"]), [entry])


async def list_models(gateway: "Gateway", request: Request, principal: keys.Principal) -> Outcome:
    """
    summary: Registered detectors, their versions, and whether their weights are installed.
    responses:
      200: {description: '{"models": [...]}'}
    """
    models = await gateway.worker.to_async.models()
    return Outcome(JSONResponse({"models": models}), [LogEntry(status_code=200)])


def _single(parsed: Parsed) -> Upload:
    if len(parsed.uploads) != 1:
        raise ApiError(400, f"send exactly one `file` or `text` (got {len(parsed.uploads)}); use /v1/batch for more")
    return parsed.uploads[0]


async def openapi(request: Request) -> Response:
    return JSONResponse(SCHEMAS.get_schema(routes=app.routes))


SCHEMAS = SchemaGenerator({"openapi": "3.0.3", "info": {
    "title": "detector", "version": "1",
    "description": "Synthetic-media detection. Send the key as `Authorization: Bearer <key>` or `X-API-Key`."}})

app = Starlette(routes=[
    Route("/v1/scan", endpoint("scan", "scan")(scan_any), methods=["POST"]),
    Route("/v1/scan/image", endpoint("scan/image", "scan")(scan_image), methods=["POST"]),
    Route("/v1/scan/audio", endpoint("scan/audio", "scan")(scan_audio), methods=["POST"]),
    Route("/v1/scan/text", endpoint("scan/text", "scan")(scan_text), methods=["POST"]),
    Route("/v1/batch", endpoint("batch", "scan")(scan_batch), methods=["POST"]),
    Route("/v1/jobs", endpoint("jobs", "jobs")(submit_job), methods=["POST"]),
    Route("/v1/jobs/{job_id}", endpoint("jobs/status", "jobs")(job_status), methods=["GET"]),
    Route("/v1/jobs/{job_id}/result", endpoint("jobs/result", "jobs")(job_result), methods=["GET"]),
    Route("/v1/models", endpoint("models", "scan")(list_models), methods=["GET"]),
    Route("/v1/openapi.json", openapi, methods=["GET"], include_in_schema=False),
    Route("/ui", lambda request: RedirectResponse("/ui/"), include_in_schema=False),
    Mount("/ui", StaticFiles(directory=STATIC_DIR, html=True), name="ui"),
])


@bentoml.service(
    name="detector",
    workers=1,
    traffic={"timeout": 600},
)
@bentoml.asgi_app(app, path="/")
class Gateway:
    worker = bentoml.depends(ScanWorker)
    jobs = bentoml.depends(LongMediaJobs)

    def __init__(self) -> None:
        self.db = open_service_database()
        self.authenticate = keys.CachedAuthenticator(self.db)
        self.limiter = keys.RateLimiter()
        self.request_log = GroupCommitLog(self.db)
        self.ready = False
        SETTINGS.spool_dir.mkdir(parents=True, exist_ok=True)

    @bentoml.on_startup
    async def start_background_work(self) -> None:
        # BentoML 1.4 replays a submitted task's request with the wrong content type when the caller uses the
        # pickle transport that `depends` picks between local services, so the task fails to parse its input.
        # Tasks go over JSON instead, to the same address.
        jobs_url = BentoMLContainer.remote_runner_mapping.get()[LongMediaJobs.name]
        self.job_tasks = RemoteProxy(jobs_url, service=LongMediaJobs, media_type="application/json")
        # Dependencies are connected only after start-up hooks return: warm up in the background.
        self._startup = asyncio.get_running_loop().create_task(self._warm_up())

    async def __is_ready__(self) -> bool:
        return self.ready

    async def _warm_up(self) -> None:
        """Train BentoML's batcher on real calls (its first calls after start are unbatched, and an untrained batcher
        can shed a burst with 503s), connect to the job service, then report ready."""
        warm_item = ScanItem(name="<warm-up>", text="A short warm-up text for the scan worker.")
        while True:
            try:
                await self.worker.to_async.scan(items=[warm_item])
                break
            except Exception:                       # the worker is still starting
                await asyncio.sleep(0.5)
        for _ in range(WARM_UP_CALLS):
            await self.worker.to_async.scan(items=[warm_item])
        await asyncio.gather(*(self.worker.to_async.scan(items=[warm_item]) for _ in range(8)))
        await self.job_tasks.__aenter__()
        self.ready = True
        logger.info("detector gateway ready")

    async def _submit_job(self, job_id: str) -> None:
        try:
            await call_local_service(lambda: self.job_tasks.to_async.run_job.submit(job_id=job_id))
        except Exception:                           # stays queued; the job service runs it when it (re)starts
            logger.exception("could not hand job %s to the job service", job_id)

    # ---- request steps ----------------------------------------------------------------------------------------

    async def admit(self, request: Request, scope: str) -> keys.Principal:
        presented = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if not presented and authorization.lower().startswith("bearer "):
            presented = authorization[7:].strip()
        try:
            principal = await anyio.to_thread.run_sync(self.authenticate, presented, scope)
        except keys.AuthError as error:
            headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
            raise ApiError(error.status, error.message, headers) from None
        wait = self.limiter.acquire(principal)
        if wait > 0:
            raise ApiError(429, f"rate limit of {principal.rate_per_second:g} requests/s exceeded",
                           {"Retry-After": keys.retry_after_header(wait)})
        return principal

    async def parse(self, request: Request) -> Parsed:
        """The uploads of a request, read within the size limit (413 beyond it)."""
        await self._read_body(request)
        options = dict(request.query_params)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        uploads: list[Upload] = []
        if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            form = await request.form(max_files=SETTINGS.max_batch_files + 1,
                                      max_fields=SETTINGS.max_batch_files + 16,
                                      max_part_size=SETTINGS.max_upload_bytes)
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    uploads.append(Upload(value.filename or f"<file:{len(uploads)}>", data=await value.read()))
                elif name in ("text", "texts"):
                    uploads.append(Upload(f"<text:{len(uploads)}>", text=value))
                else:
                    options[name] = value
        elif content_type == "application/json":
            try:
                payload = json.loads(await request.body())
            except ValueError as exc:
                raise ApiError(400, f"invalid JSON: {exc}") from None
            if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
                raise ApiError(400, 'JSON bodies look like {"text": "..."}')
            uploads.append(Upload("<text>", text=payload.pop("text")))
            options.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in payload.items()})
        elif content_type == "text/plain":
            try:
                uploads.append(Upload("<text>", text=(await request.body()).decode("utf-8")))
            except UnicodeDecodeError:
                raise ApiError(415, "text/plain bodies must be UTF-8") from None
        else:
            body = await request.body()
            if body:
                uploads.append(Upload(options.pop("filename", "<upload>"), data=body))
        return Parsed(uploads, options)

    async def _read_body(self, request: Request) -> None:
        limit = SETTINGS.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"request body of {int(declared):,} bytes is over the limit of {limit:,}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request body is over the limit of {limit:,} bytes")
            chunks.append(chunk)
        request._body = b"".join(chunks)           # Starlette reads the form and JSON from here

    def modality(self, upload: Upload) -> str | None:
        """What the content is, from its bytes: image | video | audio | text; None for what the scanner rejects."""
        if upload.text is not None:
            return "text"
        try:
            return sniff(upload.data or b"").modality
        except MediaError:
            return None

    def classify(self, upload: Upload, expected: str | None) -> str:
        """The modality of a single upload, or 415/400 when it is not one the endpoint takes."""
        if upload.text is not None:
            modality = "text"
        else:
            try:
                modality = sniff(upload.data or b"").modality
            except MediaError as error:
                status = 400 if error.code == "empty" else 415
                raise ApiError(status, error.message, entries=[
                    LogEntry(status_code=status, item_index=0, content_sha256=upload.sha256, error=error.message)
                ]) from None
        if expected is not None and modality != expected:
            message = f"this endpoint takes {expected}; the content is {modality}"
            raise ApiError(415, message, entries=[LogEntry(status_code=415, item_index=0, modality=modality,
                                                           content_sha256=upload.sha256, error=message)])
        return modality

    def is_long_media(self, upload: Upload, modality: str | None) -> bool:
        if modality == "video":
            return True
        if modality == "audio":
            seconds = _audio_seconds(upload.data or b"")
            return seconds is not None and seconds > SETTINGS.sync_audio_seconds
        return False

    async def scan_single(self, request: Request, principal: keys.Principal, expected: str | None) -> Outcome:
        parsed = await self.parse(request)
        upload = _single(parsed)
        modality = self.classify(upload, expected)
        if self.is_long_media(upload, modality):
            return await self.start_job(upload, parsed, principal, modality)
        result = (await self.run_worker([upload], parsed))[0]
        status = 200
        if result["verdict"] == "error":
            status = 500 if result.get("error_code") == "internal" else 422
        return Outcome(JSONResponse(result, status), [LogEntry.from_result(0, result, status)])

    async def run_worker(self, uploads: list[Upload], parsed: Parsed,
                         offset_indices: list[int] | None = None) -> list[dict]:
        if not uploads:
            return []
        explain, declared_ai = parsed.flag("explain"), parsed.flag("declared_ai")
        items = [ScanItem(name=u.name, data=u.data, text=u.text, explain=explain, declared_ai=declared_ai)
                 for u in uploads]
        try:
            return await call_local_service(lambda: self.worker.to_async.scan(items=items))
        except Exception as exc:                    # the worker died or is restarting: refuse, keep every record
            logger.warning("scan worker call failed: %r", exc)
            message = "the scan worker is unavailable (restarting); retry shortly"
            indices = offset_indices or list(range(len(uploads)))
            raise ApiError(503, message, {"Retry-After": "5"}, entries=[
                LogEntry(status_code=503, item_index=i, content_sha256=u.sha256, modality=self.modality(u),
                         error=f"{message}: {exc!r}"[:2000]) for i, u in zip(indices, uploads)]) from None

    async def start_job(self, upload: Upload, parsed: Parsed, principal: keys.Principal, modality: str) -> Outcome:
        if "jobs" not in principal.scopes:
            raise ApiError(403, "long media runs as a job, and this key is not allowed the 'jobs' scope")
        callback_url = parsed.options.get("callback_url") or None
        if callback_url and not callback_url.startswith(("http://", "https://")):
            raise ApiError(400, "callback_url must be an http:// or https:// URL")
        job_id = jobs.new_job_id()
        spool = SETTINGS.spool_dir / job_id
        await anyio.to_thread.run_sync(spool.write_bytes, upload.raw)
        await anyio.to_thread.run_sync(
            lambda: jobs.create_job(self.db, job_id, principal.tenant, upload.name, upload.sha256, modality,
                                    str(spool), callback_url, parsed.flag("declared_ai"), parsed.flag("explain")))
        await self._submit_job(job_id)
        job = await anyio.to_thread.run_sync(jobs.get, self.db, job_id)
        entry = LogEntry(status_code=202, item_index=0, content_sha256=upload.sha256, modality=modality,
                         job_id=job_id)
        return Outcome(JSONResponse(job, 202, headers={"Location": f"/v1/jobs/{job_id}"}), [entry])

    async def own_job(self, request: Request, principal: keys.Principal) -> dict:
        job_id = request.path_params["job_id"]
        job = await anyio.to_thread.run_sync(jobs.get, self.db, job_id, principal.tenant)
        if job is None:
            raise ApiError(404, f"no job {job_id} for this key")
        return job


def _audio_seconds(data: bytes) -> float | None:
    """The declared duration of audio bytes (container header), None when the container does not say."""
    try:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            if container.duration:
                return container.duration / av.time_base
    except Exception:                               # not decodable here: the scanner reports why
        return None
    return None


class PageAtRoot:
    """`/` opens the moderator page (BentoML's own index page there describes only its internal routes)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == "/" and scope["method"] in ("GET", "HEAD"):
            await RedirectResponse("/ui/")(scope, receive, send)
            return
        await self.app(scope, receive, send)


Gateway.add_asgi_middleware(PageAtRoot)

from .records_routes import RECORDS_ROUTES  # noqa: E402 - it builds on the endpoint wrapper above

app.router.routes.extend(RECORDS_ROUTES)
