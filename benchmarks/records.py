"""Hash-bank lookup speed with a large bank (run by hand).

    python benchmarks/records.py [--entries 100000] [--queries 2000] [--database URL]

Fills a fresh bank with random PDQ hashes through the bulk CSV import, then times lookups through the in-memory
index: plain PDQ queries (near duplicates and misses), and image queries with all 8 dihedral variants (what a scan
does per image). Brute-force popcount over the same array is timed for comparison. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from detector.records import hashing
from detector.records.api import Records
from detector.records.db import open_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--database", help="default: a temporary SQLite file")
    args = parser.parse_args()

    url = args.database or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    records = Records(open_database(url))
    records.add_reviewer({"name": "bench-admin", "role": "admin"})
    records.create_bank({"actor": "bench-admin", "name": "bench"})
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 256, (args.entries, 32), dtype=np.uint8)
    rows = "\n".join(["signal_type,signal,labels"] + [f"pdq,{h.tobytes().hex()},bench" for h in hashes])

    started = time.perf_counter()
    records.import_bank({"actor": "bench-admin", "bank": "bench", "csv": rows})
    import_seconds = time.perf_counter() - started
    started = time.perf_counter()
    records.index.refresh()
    load_seconds = time.perf_counter() - started

    queries = [_near(hashes[int(rng.integers(args.entries))], int(rng.integers(0, 48)), rng)
               for _ in range(args.queries)]
    started = time.perf_counter()
    hits = sum(bool(records.index.lookup([hashing.Signal(hashing.PDQ, q)])) for q in queries)
    single = time.perf_counter() - started

    image_queries = [(q, [_near(hashes[0], 128, rng) for _ in range(7)]) for q in queries[: args.queries // 4]]
    started = time.perf_counter()
    for query, variants in image_queries:
        records.index.lookup([hashing.Signal(hashing.PDQ, query)], [query, *variants])
    dihedral = time.perf_counter() - started

    words = hashes.view(np.uint64)
    brute_queries = [np.frombuffer(bytes.fromhex(q), np.uint64) for q in queries[:200]]
    started = time.perf_counter()
    for query in brute_queries:
        np.flatnonzero(np.bitwise_count(words ^ query).sum(axis=1) <= hashing.PDQ_MATCH_DISTANCE)
    brute = time.perf_counter() - started

    print(json.dumps({
        "entries": args.entries, "database": url.split(":")[0],
        "import_seconds": round(import_seconds, 2), "index_load_seconds": round(load_seconds, 2),
        "pdq_lookups_per_second": round(len(queries) / single, 1), "queries_with_a_match": hits,
        "image_lookups_per_second_8_dihedral_variants": round(len(image_queries) / dihedral, 1),
        "brute_force_lookups_per_second": round(len(brute_queries) / brute, 1),
    }, indent=2))


def _near(row: np.ndarray, flips: int, rng: np.random.Generator) -> str:
    bits = np.unpackbits(row)
    bits[rng.choice(256, flips, replace=False)] ^= 1
    return np.packbits(bits).tobytes().hex()


if __name__ == "__main__":
    main()
