"""C2PA manifests via `c2pa-python`, offline: no remote manifest fetch, no OCSP.

Trust anchors are configured, not downloaded: a PEM bundle named by `DETECTOR_C2PA_TRUST_ANCHORS` (or passed in).
Without one, signatures are still verified but trust is reported as not checked. Binding (the content hash),
signature and trust are reported separately, because each fails for a different reason: binding fails when the
content was changed after signing, the signature when the manifest was, trust when the signer is unknown.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from .xmp import ai_source_type

TRUST_ANCHORS_ENV = "DETECTOR_C2PA_TRUST_ANCHORS"
MIME_TYPES = {
    "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
    "mp4": "video/mp4", "mov": "video/quicktime", "m4a": "audio/mp4", "avi": "video/x-msvideo",
    "wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "pdf": "application/pdf",
}
_BINDING_PREFIXES = ("assertion.dataHash", "assertion.bmffHash", "assertion.boxesHash", "assertion.collectionHash")
_SIGNATURE_PREFIXES = ("claimSignature", "signingCredential.invalid", "signingCredential.expired",
                       "signingCredential.revoked", "timeStamp")


def trust_anchors(path: str | Path | None = None) -> str | None:
    path = path or os.environ.get(TRUST_ANCHORS_ENV)
    return Path(path).read_text() if path else None


def _context(anchors_pem: str | None):
    import c2pa

    settings: dict = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True}}
    if anchors_pem:
        settings["trust"] = {"trust_anchors": anchors_pem}
    return c2pa.Context.from_dict(settings)


def read_c2pa(data: bytes, fmt: str, anchors_pem: str | None = None) -> dict | None:
    """The manifest store summary, or None when the format cannot carry one or the file has none."""
    import c2pa

    mime = MIME_TYPES.get(fmt)
    if mime is None:
        return None
    reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, _context(anchors_pem))
    if reader is None:
        return None
    with reader:
        store = json.loads(reader.json())
    return summarize_store(store, anchors_configured=bool(anchors_pem))


def summarize_store(store: dict, anchors_configured: bool) -> dict:
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    success = [s.get("code", "") for s in results.get("success", [])]
    failure = [f.get("code", "") for f in results.get("failure", [])]
    failure_detail = [f"{f.get('code')}: {f.get('explanation')}" for f in results.get("failure", [])]
    active_label = store.get("active_manifest")
    manifests = store.get("manifests") or {}
    active = manifests.get(active_label) or {}
    signature_info = active.get("signature_info") or {}

    def status(prefixes: tuple[str, ...], ok_words: tuple[str, ...]) -> str:
        if any(c.startswith(prefixes) for c in failure):
            return "failed"
        if any(c.startswith(prefixes) and c.endswith(ok_words) for c in success):
            return "ok"
        return "unknown"

    if "signingCredential.trusted" in success:
        trust = "trusted"
    elif not anchors_configured:
        trust = "not_checked"
    elif "signingCredential.untrusted" in failure:
        trust = "untrusted"
    else:
        trust = "unknown"
    return {
        "present": True,
        "active_manifest": active_label,
        "claim_generator": _claim_generator(active),
        "validation_state": store.get("validation_state"),
        "binding": status(_BINDING_PREFIXES, (".match",)),
        "signature": status(_SIGNATURE_PREFIXES, (".validated", ".insideValidity")),
        "trust": trust,
        "trust_anchors": "configured" if anchors_configured else f"none (set {TRUST_ANCHORS_ENV} to a PEM bundle)",
        "signer": {"issuer": signature_info.get("issuer"), "common_name": signature_info.get("common_name"),
                   "alg": signature_info.get("alg")},
        "failures": failure_detail,
        "ai_actions": ai_actions(manifests),
    }


def _claim_generator(manifest: dict) -> str | None:
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict):
        return " ".join(str(info[0].get(k, "")) for k in ("name", "version")).strip() or None
    return manifest.get("claim_generator")


def ai_actions(manifests: dict) -> list[dict]:
    """Actions in any manifest (active or ingredient) whose digitalSourceType is an AI source type."""
    found = []
    for label, manifest in manifests.items():
        for assertion in manifest.get("assertions") or []:
            if not str(assertion.get("label", "")).startswith("c2pa.actions"):
                continue
            for action in (assertion.get("data") or {}).get("actions") or []:
                source = ai_source_type(str(action.get("digitalSourceType", "")))
                if source:
                    found.append({"manifest": label, "action": action.get("action"), "digitalSourceType": source,
                                  "software_agent": _agent_name(action.get("softwareAgent"))})
    return found


def _agent_name(agent: object) -> str | None:
    if isinstance(agent, dict):
        return agent.get("name")
    return agent if isinstance(agent, str) else None
