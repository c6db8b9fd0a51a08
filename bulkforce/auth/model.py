"""Rows the store keeps for logins. Secrets appear here only as hashes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    id: str
    username: str
    email: str
    full_name: str
    credential_hash: str
    created_date: str
    failed_logins: int = 0
    locked_until: float | None = None
    # may reset the org's records (POST /bulkforce/admin/reset), and sees every job
    is_admin: bool = False
    # Salesforce's "Manage Data Integrations": sees and acts on every user's bulk jobs
    manage_data_integrations: bool = False


@dataclass(frozen=True)
class App:
    client_id: str
    name: str
    secret_hash: str
    run_as: str | None
    created_date: str


@dataclass(frozen=True)
class Session:
    """An access token (`kind` "access") or a refresh token ("refresh"), by its SHA-256."""

    token_hash: str
    kind: str
    user_id: str
    client_id: str | None
    parent: str | None
    issued: float
    expires: float | None
