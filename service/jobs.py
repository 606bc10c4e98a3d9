"""Long media (video, long audio) as BentoML tasks on their own service, so a long job never holds up the batched
synchronous API. Job state lives in the database (detector.records.jobs), not in BentoML's task store, so it
survives restarts: each time this service starts, it runs the jobs an earlier run left queued or unfinished and
sends the webhooks it had not delivered.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bentoml
import torch

from detector.config import EngineConfig, ScanConfig
from detector.media import MediaInput
from detector.records import jobs, keys
from detector.records.api import Records
from detector.scan import Scanner

from . import webhooks
from .settings import SETTINGS
from .storage import open_service_database

logger = logging.getLogger(__name__)
JOB_THREADS = max(1, SETTINGS.torch_threads // 2)       # leave cores to the synchronous worker
RESUME_SECONDS = 30.0


@bentoml.service(
    name="detector-jobs",
    workers=1,
    traffic={"timeout": 4 * 3600},
    runner_connection={"max_requests": 1_000_000_000, "max_age": 1e9},
    logging={"access": {"enabled": False}},         # internal calls; the gateway logs every request
)
class LongMediaJobs:
    def __init__(self) -> None:
        torch.set_num_threads(JOB_THREADS)
        self.boot = uuid.uuid4().hex                    # tells this run's claims from an earlier run's
        self.db = open_service_database()
        records = Records(self.db)
        self.scanners = {explain: Scanner(ScanConfig(engine=EngineConfig(threads=JOB_THREADS, explain=explain)),
                                          hooks=records.scan_hooks())
                         for explain in (False, True)}
        self.deliveries = ThreadPoolExecutor(2, thread_name_prefix="webhook")
        self.one_scan_at_a_time = threading.Lock()
        threading.Thread(target=self._resume_unfinished, name="resume-jobs", daemon=True).start()

    @bentoml.task
    def run_job(self, job_id: str) -> dict:
        """Scan one queued job's spooled file; store the ScanResult; then send its webhook, if any."""
        return self._run(job_id)

    def _resume_unfinished(self) -> None:
        """At start, and then every RESUME_SECONDS as a safety net for submissions that failed while this service
        was down: run what is queued (a job is claimed once, so one also handed to a task is not run twice)."""
        for job_id in jobs.pending_webhooks(self.db):
            self.deliveries.submit(self._notify, job_id)
        while True:
            for job_id in jobs.requeue_interrupted(self.db, self.boot):
                self._run(job_id)
            time.sleep(RESUME_SECONDS)

    def _run(self, job_id: str) -> dict:
        job = jobs.claim(self.db, job_id, self.boot)
        if job is None:                                 # already done, failed, or claimed: nothing to do
            return {"job_id": job_id, "ran": False}
        spool = Path(job["spool_path"])
        try:
            source = MediaInput(source=job["filename"], path=spool, declared_ai=job["declared_ai"])
            with self.one_scan_at_a_time:
                result = self.scanners[job["explain"]].scan([source])[0]
            jobs.finish(self.db, job_id, json.loads(result.to_json()))
        except Exception as exc:                        # a bug: keep it on this job, keep the runner going
            logger.exception("job %s failed", job_id)
            jobs.fail(self.db, job_id, f"internal error: {exc!r}")
        spool.unlink(missing_ok=True)
        if job["callback_url"]:
            self.deliveries.submit(self._notify, job_id)
        return {"job_id": job_id, "ran": True}

    def _notify(self, job_id: str) -> None:
        job = jobs.get(self.db, job_id, with_private=True)
        secret = keys.webhook_secret(self.db, job["tenant"])
        if secret is None:
            jobs.record_webhook(self.db, job_id, "failed", 0, "the tenant has no active key to sign with")
            return
        body = json.dumps(jobs.public_view(job), ensure_ascii=False).encode("utf-8")
        delivered, attempts, error = webhooks.deliver(job["callback_url"], body, secret,
                                                      SETTINGS.webhook_attempts, SETTINGS.webhook_backoff_seconds)
        jobs.record_webhook(self.db, job_id, "delivered" if delivered else "failed", attempts, error)
