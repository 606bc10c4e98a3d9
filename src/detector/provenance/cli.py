"""`detector label` (Measures Art. 6 write-back, optionally with an explicit label) and `detector provenance`
(provenance findings and the Art. 6 category for files, without running the detectors)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from . import (LabelWriteError, add_audio_cue, add_image_label, add_text_label, add_video_label, decide, inspect,
               write_label)
from .explicit import DEFAULT_IMAGE_TEXT, DEFAULT_TEXT_PREFIX
from .writers import WRITABLE_FORMATS


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    label = subparsers.add_parser("label", help="write the GB 45438 AIGC label (Measures Art. 6) into a copy of FILE")
    label.add_argument("file", type=Path)
    label.add_argument("--out", type=Path, required=True, help="output path (may equal FILE to label in place)")
    label.add_argument("--propagator", required=True, help="ContentPropagator: your platform's code")
    label.add_argument("--propagate-id", required=True, help="PropagateID: your ID for this content")
    label.add_argument("--label", choices=["1", "2", "3"],
                       help="Label value (1 is, 2 possibly, 3 suspected AI-generated); default: keep the file's")
    label.add_argument("--producer", help="ContentProducer, used only when the file has no label yet")
    label.add_argument("--produce-id", help="ProduceID, used only when the file has no label yet")
    label.add_argument("--explicit", action="store_true",
                       help="also add a visible/audible label (image corner, first 2 s of video, text prefix, "
                            "audio Morse cue); this re-encodes the picture or sound")
    label.add_argument("--explicit-text", help=f"visible text (default {DEFAULT_IMAGE_TEXT!r} for images/video, "
                                               f"{DEFAULT_TEXT_PREFIX!r} for text)")
    label.add_argument("--font", help="TrueType/OpenType font file for the visible text (needed for CJK text)")
    label.set_defaults(func=run_label)

    show = subparsers.add_parser("provenance", help="show labels, C2PA, watermark, traces and the Art. 6 category")
    show.add_argument("files", type=Path, nargs="+")
    show.add_argument("--declared-ai", action="store_true", help="the uploader declared the content AI-generated")
    show.set_defaults(func=run_provenance)


def run_label(args: argparse.Namespace) -> int:
    try:
        if args.explicit:
            result = _label_with_explicit(args)
        else:
            result = write_label(args.file, args.out, propagator=args.propagator, propagate_id=args.propagate_id,
                                 label=args.label, producer=args.producer, produce_id=args.produce_id)
    except (LabelWriteError, ValueError, OSError) as exc:
        print(f"detector label: {args.file}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _label_with_explicit(args: argparse.Namespace) -> dict:
    from detector.media import MediaError, sniff

    try:
        sniffed = sniff(args.file.read_bytes()[:64 * 1024], args.file)
    except MediaError as exc:
        raise LabelWriteError(str(exc)) from None
    if sniffed.format not in WRITABLE_FORMATS:
        raise LabelWriteError(f"writing labels into {sniffed.format} files is not supported")
    handle, tmp_name = tempfile.mkstemp(prefix=".explicit-", suffix=args.file.suffix, dir=args.out.parent or ".")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        if sniffed.modality == "image":
            explicit = add_image_label(args.file, tmp, args.explicit_text or DEFAULT_IMAGE_TEXT, args.font)
        elif sniffed.modality == "video":
            explicit = add_video_label(args.file, tmp, args.explicit_text or DEFAULT_IMAGE_TEXT, args.font)
        elif sniffed.modality == "audio":
            explicit = add_audio_cue(args.file, tmp)
        else:
            explicit = add_text_label(args.file, tmp, args.explicit_text or DEFAULT_TEXT_PREFIX)
            if not explicit["added"]:
                tmp.write_bytes(args.file.read_bytes())
        implicit = write_label(tmp, args.out, propagator=args.propagator, propagate_id=args.propagate_id,
                               label=args.label, producer=args.producer, produce_id=args.produce_id,
                               fmt=sniffed.format, label_source=args.file)
    finally:
        tmp.unlink(missing_ok=True)
    return {**implicit, "explicit": explicit}


def run_provenance(args: argparse.Namespace) -> int:
    from detector.config import Limits
    from detector.media import MediaError, MediaInput, decode, sniff

    status = 0
    for path in args.files:
        try:
            data = path.read_bytes()
            fmt = sniff(data[:64 * 1024], path).format
        except (OSError, MediaError) as exc:
            print(json.dumps({"path": str(path), "error": str(exc)}, ensure_ascii=False))
            status = 1
            continue
        try:
            media = decode(MediaInput.from_path(path), Limits())
        except MediaError:
            media = None   # metadata is still worth reading when the content does not decode
        findings = decide(inspect(data, fmt, media), None, None, declared_ai=args.declared_ai)
        print(json.dumps({"path": str(path), **findings}, ensure_ascii=False))
    return status
