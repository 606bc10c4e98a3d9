"""The service's database (`open_database` declares and creates every table the project uses)."""

from __future__ import annotations

from sqlalchemy import Engine

from detector.records.db import open_database

from .settings import SETTINGS


def open_service_database() -> Engine:
    return open_database(SETTINGS.database_url)
