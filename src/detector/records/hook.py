"""BankMatcher: the Scanner hook that checks every scanned item against the hash banks.

`inspect` (prepare threads) hashes the decoded item and looks it up; `apply` (result order) puts the matches on
`ScanResult.matches` and logs each hit, so re-upload counts reach the regulator reports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ..media.types import DecodedMedia, ImageMedia
from ..report import ScanResult
from . import bank, hashing
from .common import Clock, utcnow
from .db import transaction

log = logging.getLogger(__name__)


@dataclass
class Inspected:
    matches: list[dict] = field(default_factory=list)
    error: str | None = None


class BankMatcher:
    def __init__(self, engine: Engine, index: bank.BankIndex | None = None, record: bool = True,
                 clock: Clock = utcnow):
        self.engine = engine
        self.index = index if index is not None else bank.BankIndex(engine)
        self.record = record
        self.clock = clock

    def inspect(self, data: bytes, media: DecodedMedia | None) -> Inspected:
        if media is None:
            return Inspected()
        try:
            signals = hashing.signals_for(media)
            variants = hashing.pdq_dihedral(media.rgb) if isinstance(media, ImageMedia) and signals else []
            return Inspected(self.index.lookup(signals, variants))
        except Exception as exc:  # noqa: BLE001 - a bank failure must not cost the item its detection result
            log.exception("hash-bank lookup failed")
            return Inspected(error=f"hash-bank lookup failed: {type(exc).__name__}: {exc}")

    def apply(self, result: ScanResult, inspected: Inspected) -> None:
        if inspected.error:
            result.evidence["hash_bank_error"] = inspected.error
            return
        result.matches.extend(inspected.matches)
        if self.record and inspected.matches:
            try:
                with transaction(self.engine) as session:
                    bank.record_matches(session, inspected.matches, result.sha256, self.clock())
            except Exception as exc:  # noqa: BLE001 - the match stands even if its log row could not be written
                log.exception("could not log hash-bank matches")
                result.evidence["hash_bank_error"] = f"matches found but not logged: {exc}"
