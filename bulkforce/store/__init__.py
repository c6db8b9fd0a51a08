"""Persistence: one interface (`Store`), implemented for SQLite (PostgreSQL to follow)."""

from bulkforce.store.base import RecordTable, Store, StoreError, Tx
from bulkforce.store.blobs import FileBlobs
from bulkforce.store.pool import DEFAULT_POOL_SIZE

__all__ = ["FileBlobs", "RecordTable", "Store", "StoreError", "Tx", "open_store"]


def open_store(database: str, pool_size: int = DEFAULT_POOL_SIZE) -> Store:
    """A store for a SQLAlchemy-style URL: `sqlite:///path/file.db` or `postgresql://…`."""
    from bulkforce.store.sqlite import SQLiteStore

    if database.startswith("sqlite:///"):
        return SQLiteStore(database.removeprefix("sqlite:///"), pool_size)
    if database.startswith("sqlite://"):
        raise StoreError("sqlite URLs need three slashes and a path: sqlite:///data/bulkforce.db")
    if database.startswith(("postgresql://", "postgres://")):
        from bulkforce.store.postgres import PostgresStore

        return PostgresStore(database, pool_size)
    raise StoreError(
        f"unsupported database URL {database.split(':', 1)[0]!r}: use sqlite:///PATH or postgresql://…"
    )
