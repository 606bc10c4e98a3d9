"""Catalogue rescans: files/s of `detector catalogue` (Ray Data actors) against one in-process `Scanner`, on the
same dev face photos, in one run.

Run by hand:  .venv/bin/python benchmarks/catalogue.py [--files 512] [--cores 2]
The in-process scanner gets all the cores as torch threads; the catalogue job gets them as 1 actor x cores threads
and as cores actors x 1 thread, and the latter once more with `--banks-only` (hashes looked up, no model). A job's
fixed cost (Ray start, each actor loading the models) is measured on a 2-file catalogue and taken out, so "rate" is
the marginal files/s once the actors are up.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from detector.catalogue import CatalogueJob, run_catalogue
from detector.config import EngineConfig, ScanConfig
from detector.scan import Scanner

DEV_FACES = Path(__file__).resolve().parents[1].parent / "shared/data/dev/face/deforgify/real"


def link_files(folder: Path, sources: list[Path]) -> Path:
    folder.mkdir(parents=True)
    for number, source in enumerate(sources):
        (folder / f"{number:05d}-{source.name}").symlink_to(source)
    return folder


def time_catalogue(sources: list[Path], work: Path, actors: int, threads: int, detect: bool) -> float:
    """Seconds for one job; without detection it checks an empty hash bank instead (what a bank rescan does)."""
    folder = link_files(work / f"catalogue-{actors}x{threads}-{detect}-{len(sources)}", sources)
    job = CatalogueJob(out_dir=work / f"out-{folder.name}", actors=actors, threads=threads, detect=detect,
                       records=not detect, database_url=f"sqlite:///{work / 'records.db'}")
    started = time.perf_counter()
    run_catalogue(folder, job)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=512, help="dev photos, repeated as needed")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    photos = sorted(DEV_FACES.glob("*.jpg"))
    if not photos:
        raise SystemExit(f"no photos under {DEV_FACES}")
    sources = [photos[i % len(photos)] for i in range(args.files)]

    scanner = Scanner(ScanConfig(engine=EngineConfig(threads=args.cores)))
    scanner.scan(sources[:2])                                       # load the model before timing
    started = time.perf_counter()
    scanner.scan(sources)
    in_process = len(sources) / (time.perf_counter() - started)

    report = {"files": len(sources), "cores": args.cores, "in_process_files_per_s": round(in_process, 2)}
    with tempfile.TemporaryDirectory() as tmp:
        for actors, threads, detect in ((1, args.cores, True), (args.cores, 1, True), (args.cores, 1, False)):
            fixed = time_catalogue(sources[:2], Path(tmp), actors, threads, detect)
            whole = time_catalogue(sources, Path(tmp), actors, threads, detect)
            rate = (len(sources) - 2) / (whole - fixed) if whole > fixed else None    # None: too few files
            report[f"catalogue_{actors}x{threads}" + ("" if detect else "_banks_only")] = {
                "fixed_s": round(fixed, 1), "whole_s": round(whole, 1),
                "rate_files_per_s": rate and round(rate, 2), "rate_vs_in_process": rate and round(rate / in_process, 2)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
