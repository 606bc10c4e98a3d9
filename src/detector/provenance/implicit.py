"""Find every implicit `AIGC` label among a file's metadata fields and summarize them for the report."""

from __future__ import annotations

from dataclasses import dataclass, field

from .aigc import TC260_NAMESPACE, LabelParseError, ParsedLabel, decode_utf8, label_from_json, label_from_xmp_value
from .containers import Metadata, MetaField
from .xmp import XmpError, ai_source_type, parse_xmp

MAX_LISTED = 20
# Containers whose field names are case-insensitive by their own spec (Vorbis comments, Matroska tags via FFmpeg).
_CASE_INSENSITIVE_KEYS = ("VorbisComment", "/tags:")


@dataclass
class LabelScan:
    labels: list[ParsedLabel] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)            # unreadable metadata that is not a label candidate
    ai_source_types: list[dict] = field(default_factory=list)  # IPTC digitalSourceType values in XMP
    creator_tools: list[str] = field(default_factory=list)


def scan_labels(meta: Metadata) -> LabelScan:
    scan = LabelScan()
    for item in meta.fields:
        if item.kind == "xmp":
            _scan_xmp(item, scan)
        elif _is_label_candidate(item):
            scan.labels.append(_parse_field(item))
    return scan


def _is_label_candidate(item: MetaField) -> bool:
    if item.key == "AIGC" or item.key.lower() == "aigc":
        return True
    head = item.value[:64]
    head = head.decode("latin-1") if isinstance(head, bytes) else head
    return head.lstrip().startswith("{") and '"AIGC"' in head


def _parse_field(item: MetaField) -> ParsedLabel:
    try:
        parsed = label_from_json(decode_utf8(item.value, f"label at {item.location}"), item.location)
    except LabelParseError as exc:
        return ParsedLabel(location=item.location, wrapping="unparsed", fields={}, errors=[str(exc)])
    if item.key != "AIGC" and item.key.lower() == "aigc" and not any(s in item.location for s in _CASE_INSENSITIVE_KEYS):
        parsed.warnings.append(f"metadata key is {item.key!r}; the expected key is 'AIGC'")
    elif item.key.lower() != "aigc":
        parsed.warnings.append(f"label found inside the {item.key!r} field rather than a field named AIGC")
    return parsed


def _scan_xmp(item: MetaField, scan: LabelScan) -> None:
    try:
        findings = parse_xmp(item.value)
    except XmpError as exc:
        # A label may hide in an unreadable packet: say so where the label errors are reported.
        if _mentions_aigc(item.value):
            scan.labels.append(ParsedLabel(location=item.location, wrapping="unparsed", fields={}, errors=[str(exc)]))
        else:
            scan.errors.append(f"{item.location}: {exc}")
        return
    for path, namespace, value in findings.aigc_values:
        location = f"{item.location}/{path}"
        try:
            parsed = label_from_xmp_value(value, location)
        except LabelParseError as exc:
            scan.labels.append(ParsedLabel(location=location, wrapping="unparsed", fields={}, errors=[str(exc)]))
            continue
        if namespace != TC260_NAMESPACE:
            parsed.warnings.append(f"AIGC property is in namespace {namespace or '(none)'!r}, not {TC260_NAMESPACE!r}")
        scan.labels.append(parsed)
    for value in findings.digital_source_types:
        scan.ai_source_types.append({"location": item.location, "value": value, "ai": ai_source_type(value) is not None})
    scan.creator_tools.extend(findings.creator_tools)


def _mentions_aigc(value: str | bytes) -> bool:
    return (b"AIGC" if isinstance(value, bytes) else "AIGC") in value


def summarize(labels: list[ParsedLabel]) -> dict | None:
    """The report's `implicit_label`: the label in force (the first), validity of the whole, the occurrences (at
    most MAX_LISTED of them, so that a file stuffed with labels cannot inflate the report)."""
    if not labels:
        return None
    first = labels[0]
    listed = labels[:MAX_LISTED]
    errors = [f"{p.location}: {e}" for p in listed for e in p.errors]
    warnings = [f"{p.location}: {w}" for p in listed for w in p.warnings]
    if len(labels) > 1:
        distinct = {tuple(sorted(p.fields.items(), key=lambda kv: kv[0])) for p in labels}
        errors.append(f"{len(labels)} labels in one file ({len(distinct)} distinct); GB 45438 allows one")
    first_dict = first.to_dict()
    return {
        "valid": not errors,
        "fields": first.fields,
        "label_meaning": first_dict["label_meaning"],
        "location": first.location,
        "wrapping": first.wrapping,
        "producer": first_dict["producer"],
        "errors": errors,
        "warnings": warnings,
        "occurrences": [p.to_dict() for p in listed],
    }
