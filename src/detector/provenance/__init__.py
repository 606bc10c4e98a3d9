"""Provenance: GB 45438-2025 implicit labels (read, validate, write), explicit labels, C2PA, invisible watermarks,
generator traces, and the Measures Art. 6 category with Art. 18 tamper evidence.

`inspect(data, fmt, media)` returns, JSON-serializable and without ever raising:

    {
      "format": "png",
      "implicit_label": None | {
          "valid": bool,                  # exactly one label and it passes every rule
          "fields": {...},                # the seven fields of the first label found
          "label_meaning": "is AI-generated" | "possibly ..." | "suspected ..." | None,
          "location": "png/iTXt:XML:com.adobe.xmp/AIGC",   # container/field
          "wrapping": "xmp-property" | "json-wrapped" | "bare-object" | "unparsed",
          "producer": {"fits_uscc_shape": bool, "prefix", "subject_type", "uscc", "uscc_check_ok", "suffix"},
          "errors": [...], "warnings": [...],
          "occurrences": [...],           # every label found, each with its own fields/errors/warnings
      },
      "labels_found": int,
      "explicit_label": {"kind", "checked", "found", "position"/"text"/"rhythm" | "reason"},
      "c2pa": None | {"binding": "ok"|"failed"|"unknown", "signature": ..., "trust": "trusted"|"untrusted"|
                      "not_checked"|"unknown", "ai_actions": [...], "validation_state", "signer", "failures", ...},
      "watermark": None | {"checked", "detected", "message", "sdxl_match", "bits", "confidence", "p_random", ...},
      "generator_traces": [{"generator", "location", "evidence"}],
      "iptc_source_types": [{"location", "value", "ai"}],
      "processing_software": [{"software", "location"}],   # tools that wrote the file (EXIF Software, encoder tag)
      "metadata_containers": ["EXIF", "XMP", ...],
      "errors": ["<step>: <message>", ...],
    }

`decide(findings, score, verdict, declared_ai)` adds "category", "display", "reasons" and "tamper".
`write_label(src, out, propagator=..., propagate_id=...)` performs the Art. 6 write-back.
"""

from __future__ import annotations

from collections.abc import Callable

from ..media.types import DecodedMedia
from .c2pa_check import read_c2pa, trust_anchors
from .containers import read_metadata
from .decision import decide
from .explicit import add_audio_cue, add_image_label, add_text_label, add_video_label, check_explicit
from .implicit import scan_labels, summarize
from .traces import find_processing_software, find_traces
from .watermark import detect_watermark
from .writers import LabelWriteError, write_label

__all__ = ["LabelWriteError", "add_audio_cue", "add_image_label", "add_text_label", "add_video_label", "decide",
           "inspect", "write_label"]

IMAGE_FORMATS = ("jpeg", "png", "webp", "bmp", "gif")


def inspect(data: bytes, fmt: str, media: DecodedMedia | None = None, *,
            trust_anchors_pem: str | None = None) -> dict:
    """Every provenance finding for one input; failures become entries in "errors", never exceptions."""
    findings: dict = {
        "format": fmt, "implicit_label": None, "labels_found": 0, "explicit_label": None, "c2pa": None,
        "watermark": None, "generator_traces": [], "iptc_source_types": [], "processing_software": [],
        "metadata_containers": [], "errors": [],
    }

    def step(name: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:  # one failing check must not cost the others or the scan
            findings["errors"].append(f"{name}: {type(exc).__name__}: {exc}")

    def metadata_steps() -> None:
        meta = read_metadata(data, fmt)
        findings["errors"].extend(meta.errors)
        findings["metadata_containers"] = sorted(set(meta.containers))
        scan = scan_labels(meta)
        findings["errors"].extend(scan.errors)
        findings["implicit_label"] = summarize(scan.labels)
        findings["labels_found"] = len(scan.labels)
        findings["iptc_source_types"] = scan.ai_source_types
        findings["generator_traces"] = find_traces(meta, scan.creator_tools)
        findings["processing_software"] = find_processing_software(meta, scan.creator_tools)

    def c2pa_step() -> None:
        anchors = trust_anchors_pem if trust_anchors_pem is not None else trust_anchors()
        findings["c2pa"] = read_c2pa(data, fmt, anchors)

    def watermark_step() -> None:
        rgb = _first_picture(data, fmt, media)
        if rgb is not None:
            findings["watermark"] = detect_watermark(rgb)

    step("metadata", metadata_steps)
    step("c2pa", c2pa_step)
    step("watermark", watermark_step)
    step("explicit label", lambda: findings.__setitem__("explicit_label", check_explicit(media, fmt, data)))
    return findings


def _first_picture(data: bytes, fmt: str, media):
    frames = getattr(media, "frames", None)
    if frames:
        return frames[0]
    if getattr(media, "rgb", None) is not None:
        return media.rgb
    if media is None and fmt in IMAGE_FORMATS:
        from detector.config import Limits
        from detector.media.image import decode_image

        return decode_image(data, fmt, Limits()).rgb
    return None
