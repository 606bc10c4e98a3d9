"""Measures Art. 6 category and Art. 18 tamper evidence from the provenance findings and the detector verdict."""

from __future__ import annotations

DISPLAY = {"is": "AI-generated", "possibly": "possibly AI-generated", "suspected": "suspected AI-generated", "none": None}
_LABEL_CATEGORY = {"1": "is", "2": "possibly", "3": "suspected"}
_RANK = {"none": 0, "suspected": 1, "possibly": 2, "is": 3}


def decide(findings: dict, score: float | None, verdict: str | None, declared_ai: bool = False) -> dict:
    """The findings plus `category`, `display`, `reasons` and `tamper`.

    A valid implicit label decides by its own Label value (1 is, 2 possibly, 3 suspected); a user declaration makes it
    at least "possibly"; traces alone (watermark, C2PA AI action, IPTC source type, generator metadata, an explicit
    notice, a "synthetic" detector verdict) make it "suspected".
    """
    reasons: list[str] = []
    category = "none"

    def raise_to(new: str, reason: str) -> None:
        nonlocal category
        reasons.append(reason)
        if _RANK[new] > _RANK[category]:
            category = new

    label = findings.get("implicit_label")
    if label and label.get("valid"):
        value = label["fields"].get("Label")
        raise_to(_LABEL_CATEGORY[value], f"valid implicit label at {label['location']} (Label={value}, "
                                         f"{label['label_meaning']})")
    elif label:
        raise_to("suspected", f"an implicit label is present but invalid ({len(label['errors'])} problems)")
    if declared_ai:
        raise_to("possibly", "the uploader declared the content AI-generated")
    for trace in _traces(findings):
        raise_to("suspected", trace)
    if verdict == "synthetic":
        shown = f" (score {score:.2f})" if isinstance(score, (int, float)) else ""
        raise_to("suspected", f"the detector's verdict is synthetic{shown}")
    return {**findings, "category": category, "display": DISPLAY[category], "reasons": reasons,
            "tamper": tamper_flags(findings)}


def _traces(findings: dict) -> list[str]:
    traces = []
    watermark = findings.get("watermark") or {}
    if watermark.get("detected"):
        traces.append(f"invisible watermark of {watermark['message']} (confidence {watermark['confidence']:.2f})")
    c2pa = findings.get("c2pa") or {}
    for action in c2pa.get("ai_actions") or []:
        traces.append(f"C2PA action {action['action']} with digitalSourceType {action['digitalSourceType']}")
    for source in findings.get("iptc_source_types") or []:
        if source.get("ai"):
            traces.append(f"IPTC digital source type {source['value']} in XMP at {source['location']}")
    for trace in findings.get("generator_traces") or []:
        traces.append(f"generator metadata: {trace['generator']} at {trace['location']}")
    explicit = findings.get("explicit_label") or {}
    if explicit.get("found"):
        traces.append(f"explicit {explicit.get('kind', 'label')} found ({explicit.get('text') or explicit.get('rhythm')})")
    return traces


def tamper_flags(findings: dict) -> list[dict]:
    """Signs that an implicit label was removed or damaged (Measures Art. 18)."""
    flags: list[dict] = []
    label = findings.get("implicit_label")
    watermark = findings.get("watermark") or {}
    c2pa = findings.get("c2pa") or {}
    explicit = findings.get("explicit_label") or {}
    if not label:
        if watermark.get("detected"):
            flags.append(_flag("label_missing_with_watermark", "high",
                               f"the {watermark['message']} watermark says AI-generated but no AIGC label is present"))
        if c2pa.get("ai_actions"):
            flags.append(_flag("label_missing_with_c2pa_ai", "high",
                               "the C2PA manifest records AI generation but no AIGC label is present"))
        if any(s.get("ai") for s in findings.get("iptc_source_types") or []):
            flags.append(_flag("label_missing_with_iptc_ai", "medium",
                               "XMP declares an AI digital source type but no AIGC label is present"))
        if explicit.get("found"):
            flags.append(_flag("label_missing_with_explicit_notice", "medium",
                               "a visible/audible AI notice is present but no implicit AIGC label"))
        if findings.get("generator_traces"):
            flags.append(_flag("label_missing_with_generator_metadata", "low",
                               "generator metadata is present but no AIGC label"))
        expected = bool(flags)
        if expected and not findings.get("metadata_containers"):
            flags.append(_flag("metadata_stripped", "high",
                               "the file has no metadata blocks at all although AI evidence says a label was "
                               "expected: consistent with stripping or re-encoding"))
        writers = [s["software"] for s in findings.get("processing_software") or [] if s.get("software")]
        if expected and writers:
            flags.append(_flag("rewritten_without_label", "medium",
                               f"the file was last written by {writers[0]!r} and carries AI evidence but no label: "
                               "consistent with a re-encode or edit that dropped the label"))
    else:
        if not label.get("valid"):
            flags.append(_flag("label_invalid", "high", "an AIGC label is present but fails validation: "
                               + "; ".join(label.get("errors", [])[:3])))
        if len(label.get("occurrences", [])) > 1:
            flags.append(_flag("label_duplicated", "medium", "more than one AIGC label in the file"))
    if c2pa.get("binding") == "failed":
        flags.append(_flag("content_changed_after_signing", "high",
                           "the C2PA content hash does not match: the media was edited or re-encoded after signing"))
    if c2pa.get("signature") == "failed":
        flags.append(_flag("c2pa_signature_invalid", "high", "the C2PA claim signature does not verify"))
    return flags


def _flag(code: str, severity: str, message: str) -> dict:
    return {"code": code, "severity": severity, "message": message}
