"""XMP packets: find `AIGC` properties and IPTC digital-source types, and rewrite the TC260 property in place."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from .aigc import TC260_NAMESPACE

MAX_XMP_BYTES = 2 * 1024 * 1024
RDF_NAMESPACE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia")


class XmpError(ValueError):
    pass


@dataclass
class XmpFindings:
    aigc_values: list[tuple[str, str, str]] = field(default_factory=list)   # (property path, namespace, value)
    digital_source_types: list[str] = field(default_factory=list)
    creator_tools: list[str] = field(default_factory=list)


def _local(name: str) -> tuple[str, str]:
    if name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        return namespace, local
    return "", name


def parse_xmp(raw: bytes | str) -> XmpFindings:
    """Walk every element and attribute of the packet; raise XmpError with a clear reason if it cannot be read."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_XMP_BYTES:
            raise XmpError(f"XMP packet is {len(raw)} bytes; packets over {MAX_XMP_BYTES} are not parsed")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise XmpError(f"XMP packet is not valid UTF-8 (byte {exc.start})") from None
    else:
        text = raw
        if len(text) > MAX_XMP_BYTES:
            raise XmpError(f"XMP packet is {len(text)} characters; packets over {MAX_XMP_BYTES} are not parsed")
    if re.search(r"<!(DOCTYPE|ENTITY)", text):
        raise XmpError("XMP packet declares a DOCTYPE or ENTITY, which XMP never needs; not parsed")
    start = text.find("<x:xmpmeta")
    if start < 0:
        start = text.find("<rdf:RDF")
    end_tag = "</x:xmpmeta>" if text.startswith("<x:xmpmeta", max(start, 0)) else "</rdf:RDF>"
    end = text.rfind(end_tag)
    if start < 0 or end < 0:
        raise XmpError("XMP packet has no x:xmpmeta or rdf:RDF element")
    try:
        root = ET.fromstring(text[start:end + len(end_tag)])
    except ET.ParseError as exc:
        raise XmpError(f"XMP packet is malformed XML: {exc}") from None
    except RecursionError:
        raise XmpError("XMP packet is nested too deeply to parse") from None
    findings = XmpFindings()
    for element in root.iter():
        namespace, local = _local(element.tag)
        value = _element_value(element)
        _note(findings, namespace, local, value, local)
        for attr, attr_value in element.attrib.items():
            attr_ns, attr_local = _local(attr)
            _note(findings, attr_ns, attr_local, attr_value, f"@{attr_local}")
    return findings


def _element_value(element: ET.Element) -> str:
    """Text of a simple property, or of the first rdf:li of an rdf:Alt/Seq/Bag, or an rdf:resource."""
    if (element.text or "").strip():
        return element.text.strip()
    resource = element.attrib.get(f"{{{RDF_NAMESPACE}}}resource")
    if resource:
        return resource
    for item in element.iter(f"{{{RDF_NAMESPACE}}}li"):
        if (item.text or "").strip():
            return item.text.strip()
    return ""


def _note(findings: XmpFindings, namespace: str, local: str, value: str, path: str) -> None:
    if not value:
        return
    if local == "AIGC":
        findings.aigc_values.append((path, namespace, value))
    elif local == "DigitalSourceType":
        findings.digital_source_types.append(value)
    elif local == "CreatorTool":
        findings.creator_tools.append(value)


def ai_source_type(value: str) -> str | None:
    tail = value.rstrip("/").rsplit("/", 1)[-1]
    return tail if tail in AI_SOURCE_TYPES else None


_PACKET_TEMPLATE = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
    ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    "{description}"
    " </rdf:RDF>\n"
    "</x:xmpmeta>\n"
    '<?xpacket end="w"?>'
)


def _description(inner_json: str, rdf_prefix: str = "rdf") -> str:
    return (f'  <{rdf_prefix}:Description {rdf_prefix}:about="" xmlns:TC260="{TC260_NAMESPACE}">\n'
            f"   <TC260:AIGC>{escape(inner_json)}</TC260:AIGC>\n"
            f"  </{rdf_prefix}:Description>\n")


def xmp_with_label(existing: bytes | None, inner_json: str) -> bytes:
    """Return an XMP packet holding exactly one TC260:AIGC property with this value, keeping the rest of `existing`.

    Editing is textual so that every other property stays byte-for-byte as it was.
    """
    if not existing:
        return _PACKET_TEMPLATE.format(description=_description(inner_json)).encode("utf-8")
    text = without_aigc(existing.decode("utf-8"))
    rdf_prefix = _prefix_for(text, RDF_NAMESPACE) or "rdf"
    close = text.rfind(f"</{rdf_prefix}:RDF>")
    if close < 0:
        raise XmpError("existing XMP packet has no rdf:RDF element to add the label to")
    return (text[:close] + _description(inner_json, rdf_prefix) + " " + text[close:]).encode("utf-8")


def without_aigc(text: str) -> str:
    """Remove every AIGC property (element or attribute form) whose prefix is bound to the TC260 namespace."""
    for prefix in set(re.findall(r'xmlns:([\w.-]+)\s*=\s*["\']' + re.escape(TC260_NAMESPACE), text)):
        p = re.escape(prefix)
        text = re.sub(rf"\s*<{p}:AIGC(\s[^>]*)?>.*?</{p}:AIGC>", "", text, flags=re.S)
        text = re.sub(rf"\s*<{p}:AIGC(\s[^>]*)?/>", "", text)
        text = re.sub(rf"\s{p}:AIGC\s*=\s*(\"[^\"]*\"|'[^']*')", "", text)
    return text


def _prefix_for(text: str, namespace: str) -> str | None:
    match = re.search(r'xmlns:([\w.-]+)\s*=\s*["\']' + re.escape(namespace), text)
    return match.group(1) if match else None
