"""The service's database: every table it uses is declared before `open_database` creates missing ones."""

from __future__ import annotations

from sqlalchemy import Engine

from detector.records import jobs, keys, requestlog  # noqa: F401 - declare their tables on Base
from detector.records.db import open_database

from .settings import SETTINGS


def open_service_database() -> Engine:
    return open_database(SETTINGS.database_url)
