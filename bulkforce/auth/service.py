"""Who may call the API: users, connected apps and the sessions they log in to (spec §8).

Every login path ends in an access token: random, stored only as its SHA-256, valid for
`session_seconds` of inactivity. The fixed `--token` stays valid for the org's own admin user.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass, field

from bulkforce.auth import crypto
from bulkforce.auth.model import App, Session, User
from bulkforce.auth.throttle import ThrottleSettings
from bulkforce.engine import ids
from bulkforce.engine.schema import Schema
from bulkforce.errors import Kind, ServiceError
from bulkforce.model import iso, utcnow
from bulkforce.store import Store
from bulkforce.store.base import UniqueViolation

log = logging.getLogger("bulkforce.auth")

ACCESS, REFRESH = "access", "refresh"
ADMIN_USERNAME = "admin@bulkforce.local"
_USERNAME = re.compile(r"[^\s@]+@[^\s@]+")


@dataclass
class AuthSettings:
    session_seconds: int = 7200
    # Salesforce's default password policy: 10 invalid attempts lock the user for 15 minutes.
    lockout_attempts: int = 10
    lockout_seconds: int = 900
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)


@dataclass(frozen=True)
class Principal:
    """The caller of one request. `token_hash` is None for the fixed token."""

    user_id: str
    username: str
    email: str
    full_name: str
    token_hash: str | None = None
    is_admin: bool = False
    manage_data_integrations: bool = False


@dataclass(frozen=True)
class Issued:
    access_token: str
    user: Principal
    issued_at_ms: int


def _invalid_login() -> ServiceError:
    return ServiceError(Kind.INVALID_LOGIN, "authentication failure")


class AuthService:
    def __init__(
        self, store: Store, org_id: str, admin_id: str, admin_digest: str | None,
        settings: AuthSettings,
    ) -> None:  # fmt: skip
        self.store = store
        self.org_id = org_id
        # the admin token (generated or --token) by its SHA-256: never held in clear
        self.admin_digest = admin_digest
        self.settings = settings
        # the fixed token's user: the org's admin, with every permission
        self.admin = Principal(admin_id, ADMIN_USERNAME, ADMIN_USERNAME, "Bulkforce Admin",
                               is_admin=True, manage_data_integrations=True)  # fmt: skip

    # ---- checking a presented token ----------------------------------------------------------

    def fixed(self, token: str) -> Principal | None:
        """The admin token, checked without touching the database (the hot path for CI)."""
        if self.admin_digest is not None and crypto.same(
            crypto.token_digest(token), self.admin_digest
        ):
            return self.admin
        return None

    def authenticate(self, token: str) -> Principal | None:
        principal = self.fixed(token)
        if principal is not None:
            return principal
        digest = crypto.token_digest(token)
        session = self.store.get_session(digest)
        if session is None or session.kind != ACCESS or not crypto.same(session.token_hash, digest):
            return None
        now = time.time()
        if session.expires is None or session.expires <= now:
            return None
        valid = self.settings.session_seconds
        # Salesforce's timeout counts from the last use; renewing only past half-life keeps
        # request handling read-only almost always.
        if session.expires - now < valid / 2:
            self.store.extend_session(digest, now + valid)
        user = self.store.get_user(session.user_id)
        if user is None:
            return None
        return _principal(user, digest)

    # ---- logging in --------------------------------------------------------------------------

    def login_password(self, username: str, password: str, client_id: str | None = None) -> Issued:
        """`password` is the password with the security token appended (if the user has one)."""
        user = self.check_password(username, password)
        log.info("login: %s", user.username)
        return self._issue(user, client_id, None)

    def check_password(self, username: str, password: str) -> User:
        """The user whose password this is (lockout rules apply); no token is issued."""
        now = time.time()
        user = self.store.get_user_by_name(username) if username else None
        if user is None:
            crypto.burn_verify(password)
            log.warning("login failed: unknown user")
            raise _invalid_login()
        limit = self.settings.lockout_attempts
        attempt = self.store.login_attempt(user.id, now)
        if attempt is None or (limit > 0 and attempt > limit):
            # locked, or past the limit in a parallel burst: refused without hashing
            if limit > 0 and attempt is not None:
                self.store.login_failed(user.id, limit, now + self.settings.lockout_seconds)
            log.warning("login refused: user %s is locked out", user.username)
            raise _invalid_login()
        if not crypto.verify_secret(user.credential_hash, password):
            if limit > 0:
                self.store.login_failed(user.id, limit, now + self.settings.lockout_seconds)
            log.warning("login failed: wrong password for %s", user.username)
            raise _invalid_login()
        self.store.login_ok(user.id)
        return user

    def principal_for(self, user_id: str) -> Principal | None:
        """The caller a console session stands for: the org's admin or a current user."""
        if user_id == self.admin.user_id:
            return self.admin
        user = self.store.get_user(user_id)
        return None if user is None else _principal(user, None)

    def check_client(self, client_id: str, secret: str | None) -> App:
        """A connected app by client id; its secret is checked when one is presented."""
        app = self.store.get_app(client_id) if client_id else None
        if app is None:
            raise ServiceError(Kind.INVALID_CLIENT_ID, "client identifier invalid")
        if secret is not None and not crypto.verify_secret(app.secret_hash, secret):
            log.warning("wrong client secret for connected app %s", app.name)
            raise ServiceError(Kind.INVALID_CLIENT, "invalid client credentials")
        return app

    def login_client_credentials(self, app: App) -> Issued:
        user = self.store.get_user(app.run_as) if app.run_as else None
        if user is None:
            raise ServiceError(Kind.INVALID_GRANT, "no client credentials user enabled")
        log.info("login: %s as %s (client credentials)", app.name, user.username)
        return self._issue(user, app.client_id, None)

    def login_refresh(self, app: App, refresh_token: str) -> Issued:
        digest = crypto.token_digest(refresh_token)
        session = self.store.get_session(digest)
        if (
            session is None
            or session.kind != REFRESH
            or session.client_id != app.client_id
            or not crypto.same(session.token_hash, digest)
        ):
            raise ServiceError(Kind.INVALID_GRANT, "expired access/refresh token")
        user = self.store.get_user(session.user_id)
        if user is None:
            raise ServiceError(Kind.INVALID_GRANT, "expired access/refresh token")
        log.info("login: %s (refresh token of %s)", user.username, app.name)
        return self._issue(user, app.client_id, digest)

    def _issue(self, user: User, client_id: str | None, parent: str | None) -> Issued:
        now = time.time()
        # Real tokens start with the 15-char org id and `!`; the sf CLI relies on that shape.
        token = f"{self.org_id[:15]}!AQ" + crypto.random_text(94)
        digest = crypto.token_digest(token)
        self.store.add_session(
            Session(digest, ACCESS, user.id, client_id, parent, now,
                    now + self.settings.session_seconds)
        )  # fmt: skip
        if secrets.randbelow(64) == 0:  # forget expired sessions now and then
            self.store.purge_sessions(now)
        return Issued(token, _principal(user, digest), int(now * 1000))

    def revoke(self, token: str) -> bool:
        """Revoke an access token, or a refresh token with every access token issued from it."""
        return self.store.delete_session(crypto.token_digest(token))

    def logout(self, principal: Principal) -> None:
        if principal.token_hash is not None:
            self.store.delete_session(principal.token_hash)


def _principal(user: User, token_hash: str | None) -> Principal:
    return Principal(user.id, user.username, user.email, user.full_name, token_hash,
                     user.is_admin, user.manage_data_integrations)  # fmt: skip


# ---- administration (the `bulkforce user` and `bulkforce app` commands) ----------------------


def add_user(
    store: Store, schema: Schema | None, username: str, password: str, security_token: str,
    email: str | None = None, full_name: str | None = None, fast_hash: bool = False,
    is_admin: bool = False, manage_data_integrations: bool = False,
) -> User:  # fmt: skip
    if not _USERNAME.fullmatch(username):
        raise ServiceError(Kind.CLIENT_INPUT, "a username looks like an email: name@example.com")
    if not password:
        raise ServiceError(Kind.CLIENT_INPUT, "the password must not be empty")
    local = username.split("@", 1)[0]
    user = User(
        id=ids.make_id("005", secrets.randbelow(62**6)),
        username=username,
        email=email or username,
        full_name=full_name or local,
        # Salesforce checks password and security token as one string (token appended).
        credential_hash=crypto.hash_secret(password + security_token, fast=fast_hash),
        created_date=iso(utcnow()),
        is_admin=is_admin,
        manage_data_integrations=manage_data_integrations,
    )
    try:
        store.add_user(user)
    except UniqueViolation:
        raise ServiceError(Kind.CLIENT_INPUT, f"user {username} already exists") from None
    if schema is not None:
        ensure_user_record(store, schema, user)
    return user


def ensure_user_record(store: Store, schema: Schema, user: User) -> None:
    """The User sObject row that CreatedById and OwnerId of the user's records point at."""
    user_obj = schema.get("User")
    if user_obj is None:
        return
    first, _, last = user.full_name.rpartition(" ")
    with store.transaction() as tx:
        table = tx.records(user_obj)
        if table.lookup("Id", [user.id]):
            return
        now = iso(utcnow())
        values = {
            "Id": user.id, "Username": user.username, "LastName": last or user.username,
            "FirstName": first or None, "Email": user.email,
            "Alias": user.username.split("@", 1)[0][:8], "TimeZoneSidKey": "America/Los_Angeles",
            "LocaleSidKey": "en_US", "EmailEncodingKey": "UTF-8", "LanguageLocaleKey": "en_US",
            "IsActive": 1, "CreatedDate": now, "CreatedById": user.id, "LastModifiedDate": now,
            "LastModifiedById": user.id, "SystemModstamp": now,
        }  # fmt: skip
        cols = [c for c in values if user_obj.field(c) is not None]
        table.insert(cols, [tuple(values[c] for c in cols)])


def deactivate_user_record(store: Store, schema: Schema, user_id: str) -> None:
    """A removed user's records keep pointing at their User row, which becomes inactive."""
    user_obj = schema.get("User")
    if user_obj is None or user_obj.field("IsActive") is None:
        return
    with store.transaction() as tx:
        tx.records(user_obj).update(["IsActive"], [(0, user_id)])


def add_app(
    store: Store, name: str, run_as: str | None, fast_hash: bool = False
) -> tuple[App, str]:
    """A connected app; returns it and its client secret, which is shown only this once."""
    run_as_id = None
    if run_as:
        user = store.get_user_by_name(run_as)
        if user is None:
            raise ServiceError(Kind.CLIENT_INPUT, f"no user {run_as}")
        run_as_id = user.id
    # The shapes of Salesforce consumer keys (85 chars from 3MVG9) and secrets (64 hex digits).
    client_id = "3MVG9" + crypto.random_text(80)
    secret = secrets.token_hex(32).upper()
    app = App(client_id, name, crypto.hash_secret(secret, fast=fast_hash), run_as_id, iso(utcnow()))
    store.add_app(app)
    return app, secret


def issue_refresh_token(store: Store, client_id: str, username: str) -> str:
    """A refresh token for `username` through the app: what a user grants once in a browser
    on Salesforce. It lasts until revoked or the user is removed."""
    app = store.get_app(client_id)
    if app is None:
        raise ServiceError(Kind.INVALID_CLIENT_ID, f"no connected app with client_id {client_id}")
    user = store.get_user_by_name(username)
    if user is None:
        raise ServiceError(Kind.CLIENT_INPUT, f"no user {username}")
    token = "5Aep861" + crypto.random_text(80)
    session = Session(crypto.token_digest(token), REFRESH, user.id, app.client_id, None,
                      time.time(), None)  # fmt: skip
    store.add_session(session)
    return token
