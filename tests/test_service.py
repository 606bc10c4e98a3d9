"""The service as a client sees it: a real `detector serve` process on loopback, real HTTP.

Auth (401/403), rate limit (429), limits (413/415), the same JSON as the CLI's scanner, batches, long-media jobs with
a signed webhook, adaptive batching seen in /metrics, and a worker crash that loses no request record.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import psutil
import pytest
from test_service_support import (
    MAX_BATCH_FILES,
    MAX_UPLOAD_BYTES,
    SYNC_AUDIO_SECONDS,
    comparable,
    same_result,
    gradient_png,
    mp4_bytes,
    png_bytes,
    running_service,
    stop_service,
    wav_bytes,
)

from detector.config import PROJECT_ROOT
from detector.records import requestlog
from detector.records.db import open_database
from service import webhooks

DEV_DATA = PROJECT_ROOT.parent / "shared" / "data" / "dev"
CORRUPT_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    yield running_service(tmp_path_factory.mktemp("service"))
    stop_service()


@pytest.fixture(scope="module")
def client(service):
    with service.client("acme") as http:
        yield http


@pytest.fixture(scope="module")
def scanner(service):
    """What `detector scan` runs: the scanner with the hash-bank and consent hooks, on the service's records."""
    from detector.records.api import open_records

    return open_records(service.database_url).scanner()


def test_health_and_metrics_need_no_key(service):
    for path in ("/livez", "/readyz", "/metrics"):
        assert httpx.get(service.url + path).status_code == 200, path
    assert "bentoml_service_adaptive_batch_size" in httpx.get(service.url + "/metrics").text


def test_missing_or_invalid_key_is_401(service):
    with service.client(None) as anonymous:
        missing = anonymous.post("/v1/scan/text", json={"text": "hello"})
        invalid = anonymous.post("/v1/scan/text", json={"text": "hello"}, headers={"X-API-Key": "dk_0000_nope"})
        forged = anonymous.post("/v1/scan/text", json={"text": "hello"},
                                headers={"Authorization": "Bearer " + service.keys["acme"]["key"][:-2] + "xx"})
    assert missing.status_code == 401 and "missing API key" in missing.json()["error"]
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert invalid.status_code == 401
    assert forged.status_code == 401


def test_revoked_key_and_missing_scope_are_403(service):
    with service.client("revoked") as revoked:
        response = revoked.post("/v1/scan/text", json={"text": "hello"})
    assert response.status_code == 403 and "revoked" in response.json()["error"]
    with service.client("scan-only") as scan_only:
        assert scan_only.post("/v1/scan/text", json={"text": "hello"}).status_code == 200
        refused = scan_only.post("/v1/jobs", files={"file": ("clip.mp4", mp4_bytes())})
    assert refused.status_code == 403 and "jobs" in refused.json()["error"]


def test_rate_limit_is_429_with_retry_after(service):
    with service.client("slow") as slow:                    # burst 2, 0.2 requests/s
        statuses = [slow.post("/v1/scan/text", json={"text": f"text {i}"}) for i in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    assert statuses[2].status_code == 429
    assert 1 <= int(statuses[2].headers["Retry-After"]) <= 5


def test_oversize_is_413(client):
    too_big = client.post("/v1/scan", content=b"\xff\xd8\xff" + b"\x00" * MAX_UPLOAD_BYTES,
                          headers={"Content-Type": "application/octet-stream"})
    assert too_big.status_code == 413 and "limit" in too_big.json()["error"]
    too_many = client.post("/v1/batch", files=[("text", (None, f"item {i}")) for i in range(MAX_BATCH_FILES + 1)])
    assert too_many.status_code == 413 and "batch limit" in too_many.json()["error"]


def test_wrong_type_is_415(client):
    elf = client.post("/v1/scan", files={"file": ("tool", b"\x7fELF" + b"\x02\x01\x01" + b"\x00" * 64)})
    assert elf.status_code == 415 and "executable" in elf.json()["error"]
    assert client.post("/v1/scan/audio", files={"file": ("a.png", png_bytes())}).status_code == 415
    assert client.post("/v1/scan/image", files={"file": ("a.wav", wav_bytes(1.0))}).status_code == 415
    assert client.post("/v1/scan/image", json={"text": "words, not pixels"}).status_code == 415


def _contract_inputs() -> list[tuple[str, bytes]]:
    inputs = [("noise.png", png_bytes()), ("tone.wav", wav_bytes(1.5)), ("broken.jpg", CORRUPT_JPEG),
              ("note.txt", "The quarterly report shows steady growth across all regions.".encode())]
    labels = DEV_DATA / "labels.csv"
    if labels.is_file():                                  # one real dev file per modality, when present
        seen = set()
        for row in csv.DictReader(labels.open()):
            path = DEV_DATA / row["path"]
            if row["modality"] not in seen and path.is_file() and path.stat().st_size < MAX_UPLOAD_BYTES // 2:
                seen.add(row["modality"])
                inputs.append((path.name, path.read_bytes()))
    return inputs


def test_results_are_the_cli_contract(client, scanner):
    from detector.media import MediaInput

    inputs = _contract_inputs()
    expected = [comparable(json.loads(r.to_json()))
                for r in scanner.scan([MediaInput.from_bytes(data, name) for name, data in inputs])]
    for (name, data), want in zip(inputs, expected):
        response = client.post("/v1/scan", files={"file": (name, data)})
        if response.status_code == 202:                  # long media: the same result, through a job
            got = _wait_for_job(client, response.json()["job_id"])["result"]
        else:
            assert response.status_code == (422 if want["verdict"] == "error" else 200), response.text
            got = response.json()
        assert set(got) == set(want) | {"elapsed_ms"}
        assert same_result(comparable(got), want), name
    batch = client.post("/v1/batch", files=[("file", (name, data)) for name, data in inputs])
    assert batch.status_code == 200
    for got, want in zip(batch.json()["results"], expected):
        assert same_result(comparable(got), want) or got["error_code"] == "use_job"


def test_text_endpoint_forms_agree(client):
    text = "Short notes about the weather today and tomorrow."
    forms = [client.post("/v1/scan/text", json={"text": text}),
             client.post("/v1/scan/text", content=text.encode(), headers={"Content-Type": "text/plain"}),
             client.post("/v1/scan/text", data={"text": text})]
    assert [f.status_code for f in forms] == [200, 200, 200]
    results = [comparable(f.json()) | {"path": None} for f in forms]
    assert all(same_result(result, results[0]) for result in results[1:])


def test_batch_keeps_order_and_isolates_bad_items(client):
    parts = [("file", ("a.png", png_bytes(seed=1))), ("text", (None, "a line of text")),
             ("file", ("broken.jpg", CORRUPT_JPEG)), ("file", ("clip.mp4", mp4_bytes())),
             ("file", ("b.png", png_bytes(seed=2)))]
    response = client.post("/v1/batch", files=parts)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["path"] for r in results] == ["a.png", "<text:1>", "broken.jpg", "clip.mp4", "b.png"]
    assert [r["modality"] for r in results] == ["image", "text", "image", "video", "image"]
    assert results[2]["verdict"] == "error" and results[2]["error_code"] == "corrupt"
    assert results[3]["error_code"] == "use_job"
    assert results[0]["verdict"] != "error" and results[4]["verdict"] != "error"


def _batch_histogram(metrics_text: str) -> tuple[float, float]:
    """(items, calls) of the scan worker's adaptive batches so far."""
    values = {}
    for line in metrics_text.splitlines():
        for suffix in ("sum", "count"):
            if line.startswith(f"bentoml_service_adaptive_batch_size_{suffix}{{") and 'method_name="scan"' in line:
                values[suffix] = values.get(suffix, 0.0) + float(line.rsplit(" ", 1)[1])
    return values.get("sum", 0.0), values.get("count", 0.0)


def test_concurrent_requests_share_batches(service):
    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=service.url, timeout=120,
                                     headers={"X-API-Key": service.keys["acme"]["key"]}) as http:
            responses = await asyncio.gather(*(http.post("/v1/scan/text", json={"text": f"burst text {i}"})
                                               for i in range(24)))
            return [r.status_code for r in responses]

    items_before, calls_before = _batch_histogram(httpx.get(service.url + "/metrics").text)
    for _ in range(3):
        assert set(asyncio.run(burst())) == {200}
        items, calls = _batch_histogram(httpx.get(service.url + "/metrics").text)
        if items - items_before > calls - calls_before:   # some call carried more than one request
            break
    assert items - items_before > calls - calls_before, "no batch larger than 1 in /metrics"
    assert 'detector_scan_latency_seconds_count{endpoint="scan/text",modality="text"}' in \
        httpx.get(service.url + "/metrics").text


class _Receiver(BaseHTTPRequestHandler):
    """Webhook receiver: refuses the first delivery with 500 to exercise the retry."""

    deliveries: list[tuple[dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.deliveries.append((dict(self.headers), body))
        self.send_response(500 if len(self.deliveries) == 1 else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.deliveries = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.deliveries
    server.shutdown()


def _wait_for_job(client: httpx.Client, job_id: str, until=lambda job: job["state"] in ("done", "failed")) -> dict:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_job_lifecycle_with_signed_webhook(service, client, scanner, receiver):
    from detector.media import MediaInput

    url, deliveries = receiver
    video = mp4_bytes()
    submitted = client.post("/v1/jobs", files={"file": ("clip.mp4", video)}, data={"callback_url": url})
    assert submitted.status_code == 202
    job_id = submitted.json()["job_id"]
    assert submitted.headers["Location"] == f"/v1/jobs/{job_id}"
    assert submitted.json()["state"] in ("queued", "running", "done")
    job = _wait_for_job(client, job_id, until=lambda j: j["webhook"]["state"] in ("delivered", "failed"))
    assert job["state"] == "done" and job["webhook"] == {"state": "delivered", "attempts": 2, "error": None}
    result = client.get(f"/v1/jobs/{job_id}/result")
    assert result.status_code == 200
    expected = json.loads(scanner.scan([MediaInput.from_bytes(video, "clip.mp4")])[0].to_json())
    assert same_result(comparable(result.json()), comparable(expected))
    assert len(deliveries) == 2                           # refused once, then delivered
    secret = service.keys["acme"]["webhook_secret"]
    for headers, body in deliveries:
        assert webhooks.verify(secret, headers["X-Detector-Timestamp"], body, headers["X-Detector-Signature"])
        assert not webhooks.verify("another secret", headers["X-Detector-Timestamp"], body,
                                   headers["X-Detector-Signature"])
        delivered = json.loads(body)
        assert delivered["job_id"] == job_id and delivered["result"]["sha256"] == expected["sha256"]
        assert "callback_url" not in delivered and "tenant" not in delivered
    with service.client("scan-only") as other_tenant:     # jobs are private to their tenant
        assert other_tenant.get(f"/v1/jobs/{job_id}").status_code in (403, 404)


def test_long_media_on_scan_becomes_a_job(client):
    response = client.post("/v1/scan", files={"file": ("long.wav", wav_bytes(SYNC_AUDIO_SECONDS + 2))})
    assert response.status_code == 202
    job = _wait_for_job(client, response.json()["job_id"])
    assert job["state"] == "done" and job["result"]["modality"] == "audio"
    short = client.post("/v1/scan/audio", files={"file": ("short.wav", wav_bytes(1.0))})
    assert short.status_code == 200 and short.json()["modality"] == "audio"


def test_job_survives_its_runner_being_killed(service, client):
    """The job service dies mid-job; once it is back, the job (state in the database) runs again and finishes."""
    submitted = client.post("/v1/jobs", files={"file": ("slow.png", gradient_png(1500))})
    job_id = submitted.json()["job_id"]
    _wait_for_job(client, job_id, until=lambda job: job["state"] == "running")
    os.kill(service.service_pid("detector-jobs"), signal.SIGKILL)
    job = _wait_for_job(client, job_id)
    assert job["state"] == "done" and job["runs"] == 2 and job["result"]["path"] == "slow.png"
    assert client.get(f"/v1/jobs/{job_id}/result").json()["sha256"] == job["sha256"]


def test_unfinished_or_unknown_jobs(client):
    assert client.get("/v1/jobs/0123456789abcdef").status_code == 404
    assert client.get("/v1/jobs/0123456789abcdef/result").status_code == 404


def test_worker_crash_keeps_serving_and_logging(service, client):
    """Kill the model worker while requests are in flight: they get 503 (or their result), every one of them is in
    the request log, and the service serves again once the worker is back."""
    big = gradient_png(1500)                             # small file, seconds of decoding and provenance checks
    request_ids = [f"crash-{os.getpid()}-{i}" for i in range(2)]

    worker = psutil.Process(service.service_pid("detector-scan-worker"))

    def worker_cpu_seconds() -> float:
        times = worker.cpu_times()
        return times.user + times.system

    async def in_flight() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=service.url, timeout=180,
                                     headers={"X-API-Key": service.keys["acme"]["key"]}) as http:
            idle = worker_cpu_seconds()
            calls = [asyncio.ensure_future(http.post("/v1/batch", files=[("file", (f"{n}.png", big))
                                                                         for n in range(3)],
                                                     headers={"X-Request-ID": rid})) for rid in request_ids]
            deadline = time.monotonic() + 120         # on a loaded machine the requests reach the worker late
            while worker_cpu_seconds() - idle < 0.5:  # the worker is busy with these, not done: seconds of work left
                assert time.monotonic() < deadline and not any(c.done() for c in calls), "the worker never got busy"
                await asyncio.sleep(0.05)
            worker.send_signal(signal.SIGKILL)
            return await asyncio.gather(*calls)

    responses = asyncio.run(in_flight())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503}, statuses
    assert 503 in statuses, "the kill landed between requests; nothing was in flight"
    refused = responses[statuses.index(503)]
    assert refused.headers["Retry-After"] and "restarting" in refused.json()["error"]

    deadline = time.monotonic() + 180
    while client.post("/v1/scan/text", json={"text": "are you back?"}).status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover"
        time.sleep(1)

    database = open_database(service.database_url)
    for request_id, response in zip(request_ids, responses):
        rows = requestlog.records(database, request_id=request_id)
        assert [r["item_index"] for r in rows] == [0, 1, 2], request_id
        assert {r["status_code"] for r in rows} == {response.status_code}
        assert all(r["tenant"] == "acme" and r["endpoint"] == "batch" and len(r["content_sha256"]) == 64
                   for r in rows)
        if response.status_code == 503:
            assert all("unavailable" in r["error"] for r in rows)


def test_every_request_is_logged_and_exportable(service):
    with service.client("acme") as http:
        response = http.post("/v1/scan/text", json={"text": "log me"}, headers={"X-Request-ID": "log-check"})
    with service.client(None) as anonymous:
        anonymous.post("/v1/scan/text", json={"text": "no key"}, headers={"X-Request-ID": "log-refused"})
    exported = service.cli("logs", "export", "--format", "jsonl")
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    logged = next(r for r in rows if r["request_id"] == "log-check")
    assert logged["tenant"] == "acme" and logged["endpoint"] == "scan/text" and logged["status_code"] == 200
    assert logged["content_sha256"] == response.json()["sha256"] and logged["verdict"] == response.json()["verdict"]
    assert logged["latency_ms"] > 0 and "model_version" in logged
    refused = next(r for r in rows if r["request_id"] == "log-refused")
    assert refused["status_code"] == 401 and refused["tenant"] is None
    as_csv = service.cli("logs", "export", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(table) == len(rows) and set(table[0]) == set(requestlog.EXPORT_FIELDS)


def test_openapi_documents_the_api(service):
    spec = httpx.get(service.url + "/v1/openapi.json").json()
    for path in ("/v1/scan", "/v1/scan/image", "/v1/scan/audio", "/v1/scan/text", "/v1/batch", "/v1/jobs",
                 "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result", "/v1/models"):
        assert path in spec["paths"], path
    assert "415" in spec["paths"]["/v1/scan"]["post"]["responses"]


def test_models_lists_registered_detectors(client):
    from detector.engine import registry

    names = {row["name"] for row in client.get("/v1/models").json()["models"]}
    assert names == {spec.name for spec in registry.specs()}


def test_keys_cli_shows_the_key_once_and_stores_only_a_hash(service):
    created = service.cli("keys", "create", "cli-tenant", "--json")
    assert created.returncode == 0
    key = json.loads(created.stdout)["key"]
    again = service.cli("keys", "create", "cli-tenant")
    assert again.returncode == 1 and "already has an active key" in again.stderr
    listing = service.cli("keys", "list")
    assert "cli-tenant" in listing.stdout and key not in listing.stdout
    database_file = service.database_url.removeprefix("sqlite:///")
    for path in (database_file, database_file + "-wal"):
        if os.path.exists(path):
            assert key.encode() not in open(path, "rb").read()
    assert service.cli("keys", "revoke", "cli-tenant").returncode == 0
    with httpx.Client(base_url=service.url, headers={"X-API-Key": key}) as http:
        assert http.post("/v1/scan/text", json={"text": "x"}).status_code == 403


def test_detector_cli_has_the_service_commands():
    shown = subprocess.run([sys.executable, "-m", "detector", "serve", "--help"], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0 and "--port" in shown.stdout
    for command in ("keys", "logs"):
        assert subprocess.run([sys.executable, "-m", "detector", command, "--help"], capture_output=True,
                              timeout=60).returncode == 0
