"""machine-text throughput: documents/s for ~512-token documents, batched through the engine.

Run by hand:  nice .venv/bin/python benchmarks/text.py [--docs 32] [--batch-size 16] [--threads 2] [--out FILE]
              [--bundle DIR]   (another machine-text bundle, e.g. an older version checked out, to compare)
              [--lm-precision float32|bfloat16]   (instead of the bundle's lm_precision)
              [--language en|zh]
Documents are cut to 512 tokens of the language's LM (Gemma-3-270M since machine-text 0.9.0, SmolLM2 for English
before): English ones from human dev texts (../shared/data/dev, fast-detect-gpt xsum/writing), scored in chunks of
at most 640 characters and 128 tokens; Chinese ones from packaged human Chinese (People's Daily, reviews, ...:
training.text_data.read_packaged_human, which needs the training extras), about 900 characters in 4 chunks of about
230 characters (7-8 chunks of 128 characters before machine-text 0.10.0). Prints docs/s and chunks/s (and writes them
to --out; the model card quotes models/machine-text/benchmark*.json); models load before timing starts. The load
average is reported: the machine is shared.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # run from anywhere: training/ is not installed
from detector.config import PROJECT_ROOT, EngineConfig
from detector.detectors.text.lm import LM_PRECISIONS
from detector.detectors.text.model import MachineTextDetector
from detector.engine.bundle import ModelBundle
from detector.engine.interface import Finding, NotApplicable
from detector.engine.runner import Engine, Job
from detector.media.types import TextMedia


def documents(count: int, tokenizer, language: str, tokens: int = 512) -> list[str]:
    if language == "zh":
        from training.text_data import read_packaged_human
        pool = iter([d.text for d in read_packaged_human(max_per_corpus=100) if d.lang == "zh"])
    else:
        dev = PROJECT_ROOT.parent / "shared/data/dev"
        with open(dev / "labels.csv", newline="", encoding="utf-8") as fh:
            paths = [dev / r["path"] for r in csv.DictReader(fh) if r["generator"] in ("human-xsum", "human-writing")]
        pool = (p.read_text(encoding="utf-8") for p in paths)
    docs = []
    while len(docs) < count:
        ids: list[int] = []
        while len(ids) < tokens:
            ids += tokenizer(next(pool) + ("" if language == "zh" else " "), add_special_tokens=False)["input_ids"]
        docs.append(tokenizer.decode(ids[:tokens]))
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bundle", type=Path, default=PROJECT_ROOT / "models/machine-text")
    parser.add_argument("--lm-precision", choices=LM_PRECISIONS, help="instead of the bundle's config")
    parser.add_argument("--language", choices=("en", "zh"), default="en")
    parser.add_argument("--out", type=Path,
                        help="also write the figures as JSON here (e.g. models/machine-text/benchmark.json)")
    args = parser.parse_args()
    engine = Engine(EngineConfig(batch_size=args.batch_size, threads=args.threads, device="cpu"))
    bundle = ModelBundle.load("machine-text", args.bundle)
    if args.lm_precision:
        bundle.config["lm_precision"] = args.lm_precision
    detector = MachineTextDetector(bundle, engine.device)
    for module in detector.modules():
        module.eval()
    texts = documents(args.docs, detector.languages[args.language].tokenizer, args.language)

    def prepare(text: str) -> Job:
        prepared = detector.preprocess(TextMedia(text=text, encoding="direct"))
        if isinstance(prepared, NotApplicable):             # refused: the engine runs no model for it
            return Job(meta=None)
        return Job(meta=None, detector=detector, prepared=prepared)

    list(engine.run(texts[:2], prepare))                   # warm-up
    started, cpu_started = time.perf_counter(), time.process_time()
    results = list(engine.run(texts, prepare))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    chunks = sum(r.outcome.evidence["chunks_scored"] for r in results if isinstance(r.outcome, Finding))
    figures = {"documents": len(texts), "chunks": chunks, "batch_size": args.batch_size,
               "threads": torch.get_num_threads(), "seconds": round(seconds, 2),
               "docs_per_s": round(len(texts) / seconds, 3), "chunks_per_s": round(chunks / seconds, 3),
               "cpu_seconds": round(cpu, 2), "docs_per_cpu_s": round(len(texts) / cpu, 3),
               "load_average": round(os.getloadavg()[0], 2), "version": detector.version,
               "lm_precision": detector.lm_precision, "language": args.language,
               "command": "benchmarks/text.py " + " ".join(sys.argv[1:])}
    print(json.dumps(figures))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
