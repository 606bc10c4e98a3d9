"""The GB 45438-2025 `AIGC` implicit-label object: parse either wrapping, validate, serialize.

The object has exactly seven case-sensitive string fields. Two wrappings occur in the wild and both are accepted:
`{"AIGC": {...}}` (JSON in a metadata field) and the XMP property `TC260:AIGC` whose value is the inner object.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

FIELDS = ("Label", "ContentProducer", "ProduceID", "ReservedCode1", "ContentPropagator", "PropagateID", "ReservedCode2")
LABEL_MEANINGS = {"1": "is AI-generated", "2": "possibly AI-generated", "3": "suspected AI-generated"}
TC260_NAMESPACE = "http://www.tc260.org.cn/ns/AIGC/1.0/"

# Field names seen in the wild that mean one of the seven.
MISSPELLINGS = {
    "ReserveCode1": "ReservedCode1",
    "ReserveCode2": "ReservedCode2",
    "Propagator": "ContentPropagator",
    "Producer": "ContentProducer",
    "PropagatorID": "PropagateID",
    "ProduceId": "ProduceID",
    "PropagateId": "PropagateID",
    "ContentProducerID": "ProduceID",
}
MAX_FIELD_CHARS = 4096            # a field longer than this is not a label, it is an attack or a mistake
MAX_LABEL_TEXT_BYTES = 2 * 1024 * 1024  # a real object is a few hundred bytes; a 1 MB field is still parsed to name it
MAX_JSON_DEPTH = 32
MAX_FIELDS = 64                   # more keys than this is not a label worth listing field by field
# Printable ASCII without space, `"` and `\` (GB 45438 value charset).
_LEGAL_VALUE = re.compile(r'^[\x21\x23-\x5b\x5d-\x7e]*$')
# Unified social credit code (GB 32100-2015): 18 characters from this alphabet, last one a check character.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_PRODUCER_SHAPE = re.compile(r"^(001)(\d)([0-9A-HJ-NPQRTUWXY]{18})(.*)$")


class LabelParseError(ValueError):
    """The bytes claimed to hold a label but could not be parsed into an object."""


@dataclass
class ParsedLabel:
    """One label occurrence: where it was found, how it was wrapped, its fields and what is wrong with it."""

    location: str                  # container/field, e.g. "png/iTXt:XML:com.adobe.xmp/TC260:AIGC"
    wrapping: str                  # "json-wrapped" | "bare-object" | "xmp-property"
    fields: dict
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        label = self.fields.get("Label")
        return {
            "location": self.location,
            "wrapping": self.wrapping,
            "fields": self.fields,
            "label_meaning": LABEL_MEANINGS.get(label) if isinstance(label, str) else None,
            "valid": self.valid,
            "errors": self.errors,
            "warnings": self.warnings,
            "producer": parse_content_producer(self.fields.get("ContentProducer")),
        }


def decode_utf8(raw: bytes | str, what: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LabelParseError(f"{what} is not valid UTF-8 (byte {exc.start})") from None


def parse_json_object(raw: bytes | str, what: str) -> dict:
    """JSON text -> dict, with bounded size and nesting; every failure is a LabelParseError with a clear message."""
    text = decode_utf8(raw, what).strip().strip("\x00")
    if len(text) > MAX_LABEL_TEXT_BYTES:
        raise LabelParseError(f"{what} is {len(text)} characters; a label is at most {MAX_LABEL_TEXT_BYTES}")
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _max_nesting(text) > MAX_JSON_DEPTH:
        raise LabelParseError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise LabelParseError(f"{what} is malformed JSON: {exc.msg} at character {exc.pos}") from None
    except RecursionError:
        raise LabelParseError(f"{what} is nested too deeply to parse") from None
    if not isinstance(value, dict):
        raise LabelParseError(f"{what} is JSON {type(value).__name__}, not an object")
    return value


def _reject_constant(name: str):
    raise LabelParseError(f"label JSON contains {name}, which is not JSON")


def _max_nesting(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def label_from_json(raw: bytes | str, location: str) -> ParsedLabel:
    """A metadata value holding `{"AIGC": {...}}` (or, leniently, the bare inner object)."""
    obj = parse_json_object(raw, f"label at {location}")
    if "AIGC" in obj:
        inner = obj["AIGC"]
        extra_keys = [k for k in obj if k != "AIGC"]
        if isinstance(inner, str):  # the inner object serialized a second time: seen from some generators
            inner = parse_json_object(inner, f"AIGC value at {location}")
        if not isinstance(inner, dict):
            raise LabelParseError(f"AIGC at {location} is {type(inner).__name__}, not an object")
        parsed = validate(inner, location, "json-wrapped")
        if extra_keys:
            parsed.warnings.append(f"keys beside AIGC in the wrapper ignored: {', '.join(map(str, extra_keys[:5]))}")
        return parsed
    wrong_case = [k for k in obj if isinstance(k, str) and k.lower() == "aigc"]
    if wrong_case:
        raise LabelParseError(f"label key at {location} is {wrong_case[0]!r}; the key is case-sensitive 'AIGC'")
    parsed = validate(obj, location, "bare-object")
    parsed.warnings.append('label object is not wrapped in {"AIGC": ...}')
    return parsed


def label_from_xmp_value(raw: str, location: str) -> ParsedLabel:
    """The XMP `TC260:AIGC` property value: the inner object (a wrapped one is accepted with a warning)."""
    obj = parse_json_object(raw, f"XMP property at {location}")
    if set(obj) == {"AIGC"} and isinstance(obj["AIGC"], dict):
        parsed = validate(obj["AIGC"], location, "xmp-property")
        parsed.warnings.append('XMP property value is wrapped in {"AIGC": ...}; GB 45438 puts the inner object there')
        return parsed
    return validate(obj, location, "xmp-property")


def validate(obj: dict, location: str, wrapping: str) -> ParsedLabel:
    """Check the seven fields: presence, spelling, type, charset, length, Label value."""
    errors: list[str] = []
    warnings: list[str] = []
    fields: dict = {}
    if len(obj) > MAX_FIELDS:
        return ParsedLabel(location=location, wrapping=wrapping, fields={},
                           errors=[f"label object has {len(obj)} fields; a label has {len(FIELDS)}"])
    for key, value in obj.items():
        key_text = str(key)
        if len(key_text) > 64:
            errors.append(f"unexpected field name of {len(key_text)} characters")
            continue
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            errors.append(f"field {key_text} is {len(value)} characters long; the limit is {MAX_FIELD_CHARS}")
            fields[key_text] = f"<{len(value)} characters, not shown>"   # never a legal value: not written back
            continue
        simple = isinstance(value, (str, int, float, bool)) or value is None
        fields[key_text] = value if simple else f"<{type(value).__name__}>"
        if key_text in FIELDS:
            continue
        if key_text in MISSPELLINGS:
            errors.append(f"misspelled field {key_text!r}: the standard name is {MISSPELLINGS[key_text]!r}")
        elif (standard := next((f for f in FIELDS if f.lower() == key_text.lower()), None)):
            errors.append(f"field {key_text!r} has the wrong case: field names are case-sensitive ({standard!r})")
        else:
            errors.append(f"unexpected field {key_text!r}")
    keys = [str(k) for k in obj]
    reported = {MISSPELLINGS.get(k) for k in keys} | {f for f in FIELDS for k in keys if k.lower() == f.lower()}
    errors.extend(f"missing field {name!r}" for name in FIELDS if name not in obj and name not in reported)
    for name in FIELDS:
        if name not in obj:
            continue
        value = obj[name]
        if not isinstance(value, str):
            errors.append(f"field {name} must be a string, found {type(value).__name__}")
            continue
        if len(value) > MAX_FIELD_CHARS:
            continue  # reported above
        if not _LEGAL_VALUE.match(value):
            bad = sorted({c for c in value if not _LEGAL_VALUE.match(c)})
            shown = ", ".join(repr(c) for c in bad[:5])
            errors.append(f"field {name} has illegal characters ({shown}): printable ASCII without space, '\"', '\\' only")
    label = obj.get("Label")
    if isinstance(label, str) and label not in LABEL_MEANINGS:
        errors.append(f"Label is {label[:20]!r}; it must be \"1\", \"2\" or \"3\"")
    for name in ("ContentProducer", "ProduceID"):
        if obj.get(name) == "":
            warnings.append(f"{name} is empty")
    return ParsedLabel(location=location, wrapping=wrapping, fields=fields, errors=errors, warnings=warnings)


def parse_content_producer(producer: object) -> dict | None:
    """Split "001" + subject type + 18-character unified social credit code + suffix, where the value fits."""
    if not isinstance(producer, str) or not producer:
        return None
    match = _PRODUCER_SHAPE.match(producer)
    if not match:
        return {"fits_uscc_shape": False}
    prefix, subject_type, uscc, suffix = match.groups()
    return {
        "fits_uscc_shape": True,
        "prefix": prefix,
        "subject_type": subject_type,
        "uscc": uscc,
        "uscc_check_ok": uscc_check_ok(uscc),
        "suffix": suffix,
    }


def uscc_check_ok(code: str) -> bool:
    """GB 32100-2015 check character: 31 - (sum of value * weight mod 31), 31 written as 0."""
    if len(code) != 18 or any(c not in USCC_ALPHABET for c in code):
        return False
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(code[:17], _USCC_WEIGHTS))
    check = (31 - total % 31) % 31
    return USCC_ALPHABET[check] == code[17]


def build_label(*, label: str, producer: str = "", produce_id: str = "", reserved1: str = "",
                propagator: str = "", propagate_id: str = "", reserved2: str = "") -> dict:
    """A complete seven-field object in the standard order; raises ValueError if any value breaks the rules."""
    obj = {"Label": label, "ContentProducer": producer, "ProduceID": produce_id, "ReservedCode1": reserved1,
           "ContentPropagator": propagator, "PropagateID": propagate_id, "ReservedCode2": reserved2}
    problems = validate(obj, "new label", "json-wrapped").errors
    if problems:
        raise ValueError("; ".join(problems))
    return obj


def wrapped_json(obj: dict) -> str:
    return json.dumps({"AIGC": obj}, separators=(",", ":"), ensure_ascii=True)


def inner_json(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True)
