"""`detector` command line: scan, models, and the subcommands other packages register (label, serve, ...)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Iterator, Sequence

from . import __version__
from .config import EngineConfig, Limits, ScanConfig, default_models_dir
from .media.types import MediaInput
from .report import ScanResult

# Packages that add their own subcommands through `register_cli(subparsers)`.
PLUGIN_MODULES = ("detector.provenance.cli", "detector.server", "detector.records.cli", "detector.catalogue")


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return 2
    return args.func(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detector", description="Detect synthetic faces, voices and text.")
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="print versions of the tool and models")
    sub = parser.add_subparsers(dest="command")

    scan = sub.add_parser("scan", help="scan files, folders, stdin or a string")
    scan.add_argument("paths", nargs="*", help="files or folders; '-' reads text from stdin")
    scan.add_argument("--text", action="append", default=[], help="scan this string (repeatable)")
    scan.add_argument("--json", action="store_true", help="one JSON object per input per line, in input order")
    scan.add_argument("--recursive", "-r", action="store_true", help="descend into folders")
    scan.add_argument("--batch-size", type=positive_int, default=EngineConfig.batch_size)
    scan.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    scan.add_argument("--threads", type=positive_int, default=EngineConfig.threads)
    scan.add_argument("--frames", type=positive_int, default=Limits.video_frames, help="frames sampled per video")
    scan.add_argument("--explain", action="store_true", help="include heatmaps and per-unit evidence")
    scan.add_argument("--synthetic-threshold", type=_probability, help="override the model's synthetic threshold")
    scan.add_argument("--authentic-threshold", type=_probability, help="override the model's authentic threshold")
    scan.add_argument("--declared-ai", action="store_true", help="the uploader declared the content AI-generated")
    scan.add_argument("--models-dir", type=Path, default=default_models_dir())
    scan.add_argument("--no-records", action="store_true",
                      help="skip hash-bank and consent checks (they use DETECTOR_DATABASE_URL or var/detector.db)")
    scan.set_defaults(func=run_scan)

    models = sub.add_parser("models", help="list registered detectors, versions and whether weights are present")
    models.add_argument("--models-dir", type=Path, default=default_models_dir())
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=run_models)

    for module_name in PLUGIN_MODULES:
        importlib.import_module(module_name).register_cli(sub)
    return parser


def run_scan(args: argparse.Namespace) -> int:
    from .scan import Scanner      # imports torch: keep `detector --help` fast

    if not args.paths and not args.text:
        print("detector scan: give at least one PATH, '-' or --text", file=sys.stderr)
        return 2
    inputs = list(_inputs(args.paths, args.text, args.recursive, args.declared_ai))
    config = ScanConfig(
        limits=dataclasses.replace(Limits(), video_frames=args.frames),
        engine=EngineConfig(batch_size=args.batch_size, device=args.device, threads=args.threads,
                            explain=args.explain),
        models_dir=args.models_dir,
        synthetic_threshold=args.synthetic_threshold,
        authentic_threshold=args.authentic_threshold,
    )
    hooks = []
    if not args.no_records:
        from .records.api import open_records

        records = open_records()
        hooks = records.scan_hooks()
    try:
        scanner = Scanner(config, hooks=hooks)
    except ValueError as exc:          # e.g. --device cuda without CUDA
        print(f"detector scan: {exc}", file=sys.stderr)
        return 2
    results = scanner.scan_iter(inputs)
    if sys.stderr.isatty():
        from tqdm import tqdm

        results = tqdm(results, total=len(inputs), unit="item", file=sys.stderr)
    if args.json:
        for result in results:
            print(result.to_json(), flush=True)
    else:
        _print_table(results)
    return 0


def run_models(args: argparse.Namespace) -> int:
    from .engine import registry

    rows = registry.status(args.models_dir)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(_models_table(args.models_dir))
    return 0


def _inputs(paths: list[str], texts: list[str], recursive: bool, declared_ai: bool) -> Iterator[MediaInput]:
    for raw in paths:
        if raw == "-":
            yield MediaInput(source="<stdin>", data=sys.stdin.buffer.read(), declared_ai=declared_ai)
            continue
        path = Path(raw)
        if path.is_dir() and recursive:
            for child in files_under(path):
                yield MediaInput(source=str(child), path=child, declared_ai=declared_ai)
        else:                           # a folder without --recursive is reported by the decoder as an error
            yield MediaInput(source=raw, path=path, declared_ai=declared_ai)
    for i, text in enumerate(texts):
        yield MediaInput(source=f"<text:{i}>", text=text, declared_ai=declared_ai)


def files_under(folder: Path) -> list[Path]:
    """Every file below `folder`, sorted; hidden files left out."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _print_table(results: Iterator[ScanResult]) -> None:
    print(f"{'VERDICT':<15}{'SCORE':>7}  {'MODALITY':<9}{'LABEL':<10}PATH / REASON")
    caveats: dict[str, str] = {}
    for r in results:
        category = (r.provenance or {}).get("category") or "-"
        _print_row(r.verdict, r.score, r.modality or "-", category, r.path, r.reason, r.model, caveats)
        soundtrack = r.evidence.get("soundtrack") if r.modality == "video" else None
        if soundtrack:
            _print_row(soundtrack["verdict"], soundtrack.get("score"), "audio", "-", f"{r.path} (soundtrack)",
                       soundtrack.get("reason"), soundtrack.get("model"), caveats)
    for model, caveat in caveats.items():
        print(f"caveat, {model}: {caveat}")


def _print_row(verdict: str, score: float | None, modality: str, category: str, path: str, reason: str | None,
               model: dict | None, caveats: dict[str, str]) -> None:
    line = f"{verdict:<15}{f'{score:.3f}' if score is not None else '-':>7}  {modality:<9}{category:<10}{path}"
    print(line + (f"  ({reason})" if reason else ""), flush=True)
    if model and model.get("caveat"):
        caveats[f"{model['name']} {model['version']}"] = model["caveat"]


def _models_table(models_dir: Path | None = None) -> str:
    from .engine import registry

    lines = []
    for row in registry.status(models_dir or default_models_dir()):
        state = f"version {row['version']}" if row["weights_present"] else "NO WEIGHTS (not_applicable)"
        lines.append(f"{row['name']:<18}{'/'.join(row['modalities']):<14}{state}")
        if row["caveat"]:
            lines.append(f"{'':<18}caveat: {row['caveat']}")
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        print(f"detector {__version__}\n{_models_table()}")
        parser.exit()


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


if __name__ == "__main__":
    sys.exit(main())
