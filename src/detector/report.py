"""ScanResult: the one JSON contract shared by the CLI, the service and evaluation scripts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

Verdict = Literal["synthetic", "authentic", "uncertain", "not_applicable", "error"]


@dataclass
class ScanResult:
    path: str
    modality: str | None
    verdict: Verdict
    score: float | None = None                 # calibrated probability that the content is synthetic
    reason: str | None = None                  # why not_applicable / error / uncertain
    evidence: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    model: dict | None = None                  # {"name", "version"}
    elapsed_ms: float = 0.0
    sha256: str | None = None                  # content hash: logs, hash banks, cases
    error_code: str | None = None              # machine-readable error kind when verdict == "error"
    matches: list[dict] = field(default_factory=list)   # hash-bank matches: bank, label, distance, case, refutation

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False, default=_json_default)


def _json_default(value):
    # numpy scalars and paths that slip into evidence
    if hasattr(value, "item"):
        return value.item()
    return str(value)
