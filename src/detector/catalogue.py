"""Catalogue rescans on Ray Data: every stored file of a platform's catalogue through `Scanner.scan`, in actors that
each load the models once, written as JSON-lines result files; a rerun into the same folder skips the files done
and unchanged since (size, modification time).

A platform rescans what it already hosts when a hash bank grows (Provisions Art. 10: copies of an item just confirmed
harmful that are already up) or when a model changes. Bank matches are reported in the rows, not logged as re-upload
hits: a rescan finds stored copies, not new uploads, and running it twice must not double the regulator's counts.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import os
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .config import EngineConfig, Limits, ScanConfig, default_models_dir

RESULT_GLOB = "*.json"          # Ray Data's JSON sink writes JSON lines, one file per block
ROW_KEYS = frozenset({"path", "version", "scanned_at", "verdict", "matched_banks"})   # what marks a result row


@dataclass(frozen=True)
class CatalogueJob:
    out_dir: Path
    actors: int = 1                     # scanners running at once, each with its own models
    threads: int = 1                    # torch threads per actor
    gpus_per_actor: float = 0.0         # the GPU share each actor asks Ray for; 0: actors scan on the CPU
    batch_size: int = 16                # files handed to an actor at a time
    video_frames: int = Limits.video_frames
    models_dir: Path = dataclasses.field(default_factory=default_models_dir)
    records: bool = True                # hash-bank and consent checks
    detect: bool = True                 # False: hash banks (and provenance) only, no model loaded: a fast rescan
    database_url: str | None = None     # the records' database; default DETECTOR_DATABASE_URL or var/detector.db


def catalogue_paths(source: Path) -> list[str]:
    """The files to scan: a folder (recursively, hidden files left out), or a manifest: a CSV with a `path` column
    or a text file of one path per line; relative paths are read from the manifest's folder."""
    from .cli import files_under

    if source.is_dir():
        return [str(p) for p in files_under(source)]
    try:
        with source.open(encoding="utf-8", newline="") as handle:
            if source.suffix.lower() == ".csv":
                reader = csv.DictReader(handle)
                if "path" not in (reader.fieldnames or []):
                    raise ValueError(f"{source}: a CSV manifest needs a 'path' column")
                listed = [row["path"] for row in reader]
            else:
                listed = [line.rstrip("\r\n") for line in handle]
    except UnicodeDecodeError as exc:
        raise ValueError(f"{source}: a manifest must be UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return [str(source.parent / p) for p in (x.strip() for x in listed) if p]


def file_version(path: str) -> str:
    """Size and modification time: a file changed since its row was written is scanned again ("" if unreadable)."""
    try:
        stat = os.stat(path)
    except OSError:
        return ""
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def done_versions(out_dir: Path) -> set[tuple[str, str]]:
    """(path, version) pairs that earlier runs wrote a result for. A line cut short by a crash is skipped, so its
    file is redone."""
    return {(row["path"], row["version"]) for row in _result_rows(out_dir)}


def summarize(out_dir: Path) -> dict:
    """Counts over every file's latest result in the folder (a file changed between runs has a row per version)."""
    latest: dict[str, dict] = {}
    for row in _result_rows(out_dir):
        if row["path"] not in latest or row["scanned_at"] >= latest[row["path"]]["scanned_at"]:
            latest[row["path"]] = row
    return {"files": len(latest),
            "by_verdict": dict(Counter(r["verdict"] for r in latest.values())),
            "bank_matches": sum(1 for r in latest.values() if r["matched_banks"]),
            "errors": sum(1 for r in latest.values() if r["verdict"] == "error")}


def run_catalogue(source: Path, job: CatalogueJob) -> dict:
    """Scan the catalogue's files not done yet; returns the folder's summary with this run's counts."""
    paths = list(dict.fromkeys(catalogue_paths(source)))
    done = done_versions(job.out_dir)
    todo = [{"path": p, "version": v} for p, v in ((p, file_version(p)) for p in paths) if (p, v) not in done]
    if todo:
        _scan_with_ray(todo, job)
    return {**summarize(job.out_dir), "listed": len(paths), "already_done": len(paths) - len(todo),
            "scanned_now": len(todo), "out_dir": str(job.out_dir)}


def _scan_with_ray(items: list[dict], job: CatalogueJob) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")       # offline: no usage reports
    import ray
    import ray.data

    if not sys.stderr.isatty():                 # no progress bars or progress logs: errors only
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=max(os.cpu_count() or 1, job.actors * job.threads), include_dashboard=False,
                 log_to_driver=False, logging_level="WARNING")
    try:
        blocks = max(1, min(len(items), 4 * job.actors))
        dataset = ray.data.from_items(items, override_num_blocks=blocks)
        dataset = dataset.map_batches(CatalogueScanner, fn_constructor_args=(job,), batch_size=job.batch_size,
                                      concurrency=job.actors, num_cpus=job.threads, num_gpus=job.gpus_per_actor,
                                      batch_format="numpy")
        dataset.write_json(str(job.out_dir))
    finally:
        if started_here:
            ray.shutdown()


class CatalogueScanner:
    """A Ray Data actor: one Scanner (models, engine, hooks) reused for every batch it is given."""

    def __init__(self, job: CatalogueJob):
        from .scan import Scanner

        config = ScanConfig(limits=dataclasses.replace(Limits(), video_frames=job.video_frames),
                            engine=EngineConfig(batch_size=job.batch_size, threads=job.threads,
                                                device="auto" if job.gpus_per_actor else "cpu"),
                            models_dir=job.models_dir, detect=job.detect)
        hooks = []
        if job.records:
            from .records.api import open_records

            records = open_records(job.database_url)
            hooks = records.scan_hooks(record_matches=False)
        self.scanner = Scanner(config, hooks=hooks)

    def __call__(self, batch: dict) -> dict:
        results = self.scanner.scan([str(p) for p in batch["path"]])     # a bad file is an error row, not a crash
        scanned_at = datetime.now(timezone.utc).isoformat()
        return {"path": [r.path for r in results],
                "version": [str(v) for v in batch["version"]],
                "scanned_at": [scanned_at] * len(results),
                "sha256": [r.sha256 for r in results],
                "modality": [r.modality for r in results],
                "verdict": [r.verdict for r in results],
                "score": [r.score for r in results],
                "reason": [r.reason for r in results],
                "matched_banks": [sorted({m["bank"] for m in r.matches}) for r in results],
                "result": [r.to_json() for r in results]}


def _result_rows(out_dir: Path):
    for file in sorted(out_dir.glob(RESULT_GLOB)) if out_dir.is_dir() else []:
        for line in file.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and ROW_KEYS <= row.keys():     # other JSON in the folder is not ours
                yield row


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    from .cli import positive_int

    cmd = subparsers.add_parser("catalogue", help="rescan a stored catalogue (folder or manifest) on Ray Data")
    cmd.add_argument("source", type=Path, help="a folder, a CSV manifest with a 'path' column, or a list of paths")
    cmd.add_argument("--out", type=Path, required=True,
                     help="results folder (JSON lines); a rerun skips files done and unchanged")
    cmd.add_argument("--actors", type=positive_int, default=CatalogueJob.actors,
                     help="scanners at once, each with its own models")
    cmd.add_argument("--threads", type=positive_int, default=CatalogueJob.threads, help="torch threads per scanner")
    cmd.add_argument("--gpus-per-actor", type=_gpu_share, default=CatalogueJob.gpus_per_actor,
                     help="GPUs each scanner asks Ray for (e.g. 0.5: two scanners per GPU); 0: CPU only")
    cmd.add_argument("--batch-size", type=positive_int, default=CatalogueJob.batch_size)
    cmd.add_argument("--frames", type=positive_int, default=Limits.video_frames, help="frames sampled per video")
    cmd.add_argument("--models-dir", type=Path, default=default_models_dir())
    checks = cmd.add_mutually_exclusive_group()
    checks.add_argument("--banks-only", action="store_true",
                        help="match against the hash banks only, no detector: after a bank grows")
    checks.add_argument("--no-records", action="store_true", help="skip hash-bank and consent checks")
    cmd.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    job = CatalogueJob(out_dir=args.out, actors=args.actors, threads=args.threads, batch_size=args.batch_size,
                       video_frames=args.frames, models_dir=args.models_dir, records=not args.no_records,
                       detect=not args.banks_only, gpus_per_actor=args.gpus_per_actor)
    try:
        summary = run_catalogue(args.source, job)
    except (OSError, ValueError) as exc:     # a missing or unreadable manifest, a CSV without 'path'
        print(f"detector catalogue: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


def _gpu_share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 8:
        raise argparse.ArgumentTypeError("a GPU share from 0 to 8")
    return value
