"""The service's records on SQLite and, where CI started one, on PostgreSQL: API keys, the request log, job state
across restarts; plus the token bucket and webhook signing and retries."""

from __future__ import annotations

import io
import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, text

from detector.config import PROJECT_ROOT
from detector.records import jobs, keys, requestlog
from detector.records.db import Base, open_database, transaction
from service import webhooks

POSTGRES_URL_FILE = PROJECT_ROOT / "var" / "ci" / "postgres.url"     # written by .ci/services.d/postgres.sh


def _postgres_url() -> str | None:
    url = os.environ.get("DETECTOR_TEST_POSTGRES_URL")
    if not url and POSTGRES_URL_FILE.is_file():
        url = POSTGRES_URL_FILE.read_text().strip()
    return url or None


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield open_database(f"sqlite:///{tmp_path / 'records.db'}")
        return
    url = _postgres_url()
    if url is None:
        pytest.skip("no PostgreSQL: set DETECTOR_TEST_POSTGRES_URL or run .ci/services.d/postgres.sh")
    engine = open_database(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:                                # noqa: BLE001 - any driver error means "not running"
        pytest.skip(f"PostgreSQL at {url} is not reachable: {exc}")
    # the server outlives test runs: rebuild these tables so a schema from an older checkout cannot linger
    service_tables = [t.__table__ for t in (jobs.JobRecord, requestlog.RequestRecord, keys.ApiKey)]
    Base.metadata.drop_all(engine, tables=service_tables)
    Base.metadata.create_all(engine, tables=service_tables)
    yield engine
    with transaction(engine) as session:                    # leave the shared database as we found it
        for table in (jobs.JobRecord, requestlog.RequestRecord, keys.ApiKey):
            session.execute(table.__table__.delete())
    engine.dispose()


def _tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


def test_keys_are_stored_hashed_and_checked(database):
    tenant = _tenant()
    created = keys.create_key(database, tenant, scopes=("scan",))
    with transaction(database) as session:
        row = session.scalar(select(keys.ApiKey).where(keys.ApiKey.tenant == tenant))
        assert created.key not in (row.key_sha256, row.key_id) and len(row.key_sha256) == 64
    principal = keys.authenticate(database, created.key, "scan")
    assert principal.tenant == tenant and principal.webhook_secret == created.webhook_secret
    with pytest.raises(keys.AuthError) as wrong_scope:
        keys.authenticate(database, created.key, "jobs")
    assert wrong_scope.value.status == 403
    for bad in (None, "", "dk_nothing", created.key[:-1] + ("A" if created.key[-1] != "A" else "B")):
        with pytest.raises(keys.AuthError) as refused:
            keys.authenticate(database, bad, "scan")
        assert refused.value.status == 401
    with pytest.raises(ValueError, match="already has an active key"):
        keys.create_key(database, tenant)
    assert keys.revoke_key(database, tenant) == 1
    with pytest.raises(keys.AuthError) as revoked:
        keys.authenticate(database, created.key, "scan")
    assert revoked.value.status == 403
    replacement = keys.create_key(database, tenant)          # one active key per tenant, after revoking
    assert keys.authenticate(database, replacement.key, "jobs").tenant == tenant
    listed = [row for row in keys.list_keys(database) if row["tenant"] == tenant]
    assert [row["revoked_at"] is None for row in listed] == [False, True]


def test_cached_authentication_sees_revocation_within_its_ttl(database):
    tenant, now = _tenant(), [0.0]
    created = keys.create_key(database, tenant, scopes=("scan",))
    authenticate = keys.CachedAuthenticator(database, ttl=5.0, clock=lambda: now[0])
    assert authenticate(created.key, "scan").tenant == tenant
    keys.revoke_key(database, tenant)
    now[0] = 4.0
    assert authenticate(created.key, "scan").tenant == tenant            # still cached
    with pytest.raises(keys.AuthError) as wrong_scope:
        authenticate(created.key, "jobs")
    assert wrong_scope.value.status == 403
    now[0] = 5.5
    with pytest.raises(keys.AuthError) as revoked:
        authenticate(created.key, "scan")
    assert revoked.value.status == 403


def test_token_bucket_refills_at_the_key_rate():
    now = [100.0]
    limiter = keys.RateLimiter(clock=lambda: now[0])
    principal = keys.Principal("t", "id", frozenset({"scan"}), rate_per_second=2.0, burst=3.0, webhook_secret="s")
    assert [limiter.acquire(principal) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire(principal) == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.acquire(principal) == 0.0
    now[0] += 10                                             # refills up to the burst, not beyond
    assert [limiter.acquire(principal) == 0.0 for _ in range(4)] == [True, True, True, False]
    assert keys.retry_after_header(0.2) == "1" and keys.retry_after_header(2.1) == "3"


def test_request_log_round_trips_and_exports(database):
    result = {"path": "a.png", "modality": "image", "verdict": "authentic", "score": 0.12, "sha256": "ab" * 32,
              "model": {"name": "face-forgery", "version": "3"}, "reason": None}
    requestlog.record_requests(database, [
        requestlog.RequestLog("req-1", "acme", "scan", 12.5, [requestlog.LogEntry.from_result(0, result)]),
        requestlog.RequestLog("req-2", None, "scan", 0.4, [requestlog.LogEntry(status_code=401,
                                                                               error="missing API key")])])
    rows = requestlog.records(database)
    assert [(r["request_id"], r["status_code"]) for r in rows[-2:]] == [("req-1", 200), ("req-2", 401)]
    first = requestlog.records(database, request_id="req-1")[0]
    assert (first["tenant"], first["content_sha256"], first["verdict"], first["model_name"],
            first["model_version"], first["score"]) == ("acme", "ab" * 32, "authentic", "face-forgery", "3", 0.12)
    out = io.StringIO()
    assert requestlog.export(database, out, "jsonl", tenant="acme") == 1
    assert json.loads(out.getvalue())["request_id"] == "req-1"
    out = io.StringIO()
    requestlog.export(database, out, "csv")
    assert out.getvalue().splitlines()[0].split(",") == list(requestlog.EXPORT_FIELDS)
    with pytest.raises(ValueError):
        requestlog.export(database, io.StringIO(), "xml")


def test_job_state_survives_a_restart(database, tmp_path):
    job_id = jobs.new_job_id()
    jobs.create_job(database, job_id, "acme", "clip.mp4", "cd" * 32, "video", str(tmp_path / job_id),
                    callback_url="http://127.0.0.1:9/hook")
    first_run = jobs.claim(database, job_id, runner_boot="boot-1")
    assert first_run["state"] == "running" and first_run["callback_url"] == "http://127.0.0.1:9/hook"
    assert jobs.claim(database, job_id, runner_boot="boot-1") is None         # a job runs once
    # The runner dies; a new one starts: the job is queued again, and only the new runner can claim it.
    assert jobs.requeue_interrupted(database, runner_boot="boot-2") == [job_id]
    assert jobs.claim(database, job_id, runner_boot="boot-2")["runs"] == 2
    assert jobs.requeue_interrupted(database, runner_boot="boot-2") == []      # its own running job stays
    jobs.finish(database, job_id, {"verdict": "authentic", "sha256": "cd" * 32})
    reopened = open_database(database.url.render_as_string(hide_password=False))
    job = jobs.get(reopened, job_id, tenant="acme")
    assert job["state"] == "done" and job["result"]["verdict"] == "authentic" and job["finished_at"]
    assert "callback_url" not in job and jobs.get(reopened, job_id, tenant="someone-else") is None
    assert jobs.pending_webhooks(reopened) == [job_id]
    jobs.record_webhook(reopened, job_id, "delivered", attempts=1)
    assert jobs.pending_webhooks(reopened) == []


def test_a_job_that_keeps_killing_its_runner_fails(database, tmp_path):
    job_id = jobs.new_job_id()
    jobs.create_job(database, job_id, "acme", "bad.mp4", "ef" * 32, "video", str(tmp_path / job_id))
    for boot in range(3):
        assert jobs.requeue_interrupted(database, runner_boot=f"boot-{boot}") == [job_id]
        jobs.claim(database, job_id, runner_boot=f"boot-{boot}")
    assert jobs.requeue_interrupted(database, runner_boot="boot-3") == []
    job = jobs.get(database, job_id)
    assert job["state"] == "failed" and "3 attempts" in job["error"]


def test_webhook_signature_binds_body_time_and_secret():
    body = b'{"job_id": "x"}'
    signature = webhooks.sign("secret", "1700000000", body)
    assert webhooks.verify("secret", "1700000000", body, signature, now=1700000010)
    assert not webhooks.verify("secret", "1700000000", body + b" ", signature, now=1700000010)
    assert not webhooks.verify("secret", "1700000001", body, signature, now=1700000010)
    assert not webhooks.verify("other", "1700000000", body, signature, now=1700000010)
    assert not webhooks.verify("secret", "1700000000", body, signature, now=1700009999)     # stale: replay
    assert not webhooks.verify("secret", "not-a-time", body, signature)


def test_webhook_delivery_retries_with_backoff():
    statuses = [503, 500, 200]
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(statuses[len(received) - 1])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    waits = []
    try:
        delivered = webhooks.deliver(f"http://127.0.0.1:{server.server_port}/", b"{}", "s", attempts=5,
                                     backoff_seconds=0.5, sleep=waits.append)
    finally:
        server.shutdown()
    assert delivered == (True, 3, None) and waits == [0.5, 1.0] and received == [b"{}"] * 3
    unreachable = webhooks.deliver("http://127.0.0.1:9/", b"{}", "s", attempts=2, backoff_seconds=0.1,
                                   sleep=waits.append)
    assert unreachable[0] is False and unreachable[1] == 2 and "ConnectError" in unreachable[2]
