"""Trust-and-safety records on one SQLAlchemy store (SQLite by default, PostgreSQL by URL)."""
