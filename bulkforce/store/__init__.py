"""Persistence: one interface (`Store`), implemented for SQLite (PostgreSQL to follow)."""

from bulkforce.store.base import RecordTable, Store, StoreError, Tx
from bulkforce.store.blobs import FileBlobs

__all__ = ["FileBlobs", "RecordTable", "Store", "StoreError", "Tx", "open_store"]


def open_store(database: str) -> Store:
    """A store for a SQLAlchemy-style URL: `sqlite:///path/file.db` or `postgresql://…`."""
    from bulkforce.store.sqlite import SQLiteStore

    if database.startswith("sqlite:///"):
        return SQLiteStore(database.removeprefix("sqlite:///"))
    if database.startswith("sqlite://"):
        raise StoreError("sqlite URLs need three slashes and a path: sqlite:///data/bulkforce.db")
    if database.startswith(("postgresql://", "postgres://")):
        from bulkforce.store.postgres import PostgresStore

        return PostgresStore(database)
    raise StoreError(
        f"unsupported database URL {database.split(':', 1)[0]!r}: use sqlite:///PATH or postgresql://…"
    )
