"""Console sign-in: a signed session cookie (never an API token), CSRF tokens derived from it,
and sign-out that holds across every API process of a deployment (kept in the store)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from bulkforce.auth.service import AuthService, Principal
from bulkforce.jobs.access import Caller
from bulkforce.store import Store

COOKIE = "bf_console"
# the sign-in form has no session yet: its CSRF token is a double-submit cookie
LOGIN_COOKIE = "bf_login"


@dataclass(frozen=True)
class ConsoleSession:
    sid: str
    expires: float
    principal: Principal
    csrf: str

    @property
    def caller(self) -> Caller:
        """Who the services check access for: the same rules as the APIs'."""
        p = self.principal
        return Caller(p.user_id, p.is_admin, p.manage_data_integrations)

    @property
    def admin(self) -> bool:
        return self.principal.is_admin


class Sessions:
    def __init__(self, store: Store, auth: AuthService, seconds: int, secure: bool) -> None:
        self.store = store
        self.auth = auth
        self.seconds = seconds
        self.secure = secure
        # One secret per deployment: API processes sharing a PostgreSQL database accept each
        # other's cookies.
        self.secret = store.add_meta("console_secret", secrets.token_hex(32)).encode()

    def _sign(self, payload: str) -> str:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, user_id: str) -> str:
        """A new cookie value for the user: `user.sid.expiry.signature`."""
        payload = f"{user_id}.{secrets.token_hex(16)}.{int(time.time()) + self.seconds}"
        return f"{payload}.{self._sign(payload)}"

    def resolve(self, cookie: str | None) -> ConsoleSession | None:
        """The signed-in caller, or None for a missing, forged, expired or signed-out cookie,
        or a user who no longer exists."""
        if not cookie or cookie.count(".") != 3:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        user_id, sid, expires = payload.split(".")
        if not expires.isdigit() or int(expires) <= time.time():
            return None
        if self.store.get_meta(f"console_signout:{sid}") is not None:
            return None
        principal = self.auth.principal_for(user_id)
        if principal is None:
            return None
        return ConsoleSession(sid, float(expires), principal, self.csrf_for(sid))

    def csrf_for(self, sid: str) -> str:
        return self._sign(f"csrf:{sid}")

    def sign_out(self, session: ConsoleSession) -> None:
        self.store.set_meta(f"console_signout:{session.sid}", str(int(session.expires)))

    @staticmethod
    def same(a: str | None, b: str) -> bool:
        return a is not None and hmac.compare_digest(a.encode(), b.encode())
