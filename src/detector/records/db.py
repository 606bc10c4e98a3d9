"""The one storage layer: a SQLAlchemy engine from a URL (SQLite in WAL mode by default), tables, transactions.

Feature modules declare their tables on `Base`; `open_database` imports every one of them (`_TABLE_MODULES`) and
creates whatever tables are missing.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session

from ..config import PROJECT_ROOT


class Base(DeclarativeBase):
    pass


def default_url() -> str:
    """`DETECTOR_DATABASE_URL`, else an SQLite file under var/ in the repository."""
    return os.environ.get("DETECTOR_DATABASE_URL", f"sqlite:///{PROJECT_ROOT / 'var' / 'detector.db'}")


def open_database(url: str | None = None) -> Engine:
    url = url or default_url()
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True,
                           connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")       # readers never block the writer
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    _declare_every_table()
    Base.metadata.create_all(engine)
    return engine


_TABLE_MODULES = ("tables", "audit", "jobs", "keys", "requestlog")     # every module that declares tables on Base


def _declare_every_table() -> None:
    """Import the table modules, so whichever caller opens the store first (CLI, service, worker) creates every
    table: one store, one schema."""
    for module in _TABLE_MODULES:
        importlib.import_module(f"{__package__}.{module}")


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back everything on any exception (no partial records)."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
