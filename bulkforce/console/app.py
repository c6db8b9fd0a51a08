"""The console's routes: sign-in, the guard every page passes, security headers, rendering.
Pages live in jobs.py and objects.py; they call the same services as the APIs."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, PackageLoader
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bulkforce.auth.service import AuthService
from bulkforce.auth.throttle import LoginThrottle
from bulkforce.console.session import COOKIE, LOGIN_COOKIE, ConsoleSession, Sessions
from bulkforce.errors import Kind, ServiceError
from bulkforce.jobs.service import Context

Page = Callable[[Request, ConsoleSession], Awaitable[Response]]

# Everything the pages load comes from this server; no inline script or style runs.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
_STATUS = {
    Kind.NOT_FOUND: 404, Kind.INVALID_SESSION: 401, Kind.INSUFFICIENT_ACCESS: 403,
    Kind.UNKNOWN: 500,
}  # fmt: skip


def secured(response: Response, private: bool = True) -> Response:
    h = response.headers
    h["Content-Security-Policy"] = CSP
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "no-referrer"
    if private:
        h["Cache-Control"] = "no-store"
        h["Pragma"] = "no-cache"
    return response


FORM_LIMIT = 64 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """The console's forms are small and url-encoded; anything else reads as empty."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return {}
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > FORM_LIMIT:
            return {}
    return dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))


def safe_next(target: str | None) -> str:
    """Only a path on this server: `//evil.example` and absolute URLs go to the start page."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class ConsoleBase:
    def __init__(
        self, ctx: Context, auth: AuthService, throttle: LoginThrottle, secure: bool
    ) -> None:
        self.ctx = ctx
        self.auth = auth
        self.throttle = throttle
        self.secure = secure
        self.sessions = Sessions(ctx.store, auth, auth.settings.session_seconds, secure)
        self.env = Environment(
            loader=PackageLoader("bulkforce.console", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # ---- rendering ---------------------------------------------------------------------------

    def render(
        self, template: str, session: ConsoleSession | None, status: int = 200, **values: Any
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(session=session, **values)
        return HTMLResponse(html, status_code=status)

    def error_page(self, session: ConsoleSession | None, err: ServiceError) -> Response:
        status = _STATUS.get(err.kind, 400)
        return self.render("error.html", session, status=status, message=err.message)

    def guard(self, page: Page, fragment: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """Signed in, or off to the sign-in page; a POST must carry the session's CSRF token."""

        async def endpoint(request: Request) -> Response:
            cookie = request.cookies.get(COOKIE)
            session = await run_in_threadpool(self.sessions.resolve, cookie)
            if session is None:
                if fragment or request.method != "GET":
                    return secured(Response("Sign in first", status_code=401))
                target = quote(
                    request.url.path + (f"?{request.url.query}" if request.url.query else "")
                )
                return secured(RedirectResponse(f"/login?next={target}", status_code=303))
            if request.method == "POST":
                form = await read_form(request)
                token = form.get("csrf")
                if not isinstance(token, str) or not Sessions.same(token, session.csrf):
                    err = ServiceError(Kind.CLIENT_INPUT, "The form has expired; reload the page")
                    return secured(self.error_page(session, err))
                request.state.form = form
            try:
                response = await page(request, session)
            except ServiceError as e:
                response = self.error_page(session, e)
            return secured(response)

        return endpoint

    # ---- sign in and out ---------------------------------------------------------------------

    def _cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
            secure=self.secure,
        )  # fmt: skip

    async def login(self, request: Request) -> Response:
        next_url = safe_next(request.query_params.get("next"))
        if request.method == "GET":
            session = await run_in_threadpool(self.sessions.resolve, request.cookies.get(COOKIE))
            if session is not None:
                return secured(RedirectResponse(next_url, status_code=303))
            return self._login_form(next_url, None)
        form = await read_form(request)
        csrf = form.get("csrf")
        if not isinstance(csrf, str) or not Sessions.same(request.cookies.get(LOGIN_COOKIE), csrf):
            return self._login_form(next_url, "The sign-in form expired; try again.", 400)
        token = str(form.get("token") or "").strip()
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        # the API's login throttle and lockout apply here too (per address and per username)
        client = request.client.host if request.client else ""
        keys = [client, f"user:{username.lower()}" if username and not token else ""]
        try:
            user_id = await self.throttle.run(keys, self._check, token, username, password)
        except ServiceError:
            return self._login_form(next_url, "Wrong token, or wrong username or password.", 401)
        response = RedirectResponse(next_url, status_code=303)
        self._cookie(response, COOKIE, self.sessions.issue(user_id), self.sessions.seconds)
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return secured(response)

    def _check(self, token: str, username: str, password: str) -> str:
        """The signing-in user's id; INVALID_LOGIN (counted by the throttle) otherwise."""
        if token:
            principal = self.auth.authenticate(token)
            if principal is not None:
                return principal.user_id
        elif username:
            return self.auth.check_password(username, password).id
        raise ServiceError(Kind.INVALID_LOGIN, "authentication failure")

    def _login_form(self, next_url: str, message: str | None, status: int = 200) -> Response:
        csrf = secrets.token_hex(16)
        response = self.render(
            "login.html", None, status=status, csrf=csrf, next=next_url, message=message
        )
        self._cookie(response, LOGIN_COOKIE, csrf, 3600)
        return secured(response)

    async def logout(self, request: Request, session: ConsoleSession) -> Response:
        await run_in_threadpool(self.sessions.sign_out, session)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def static(self, request: Request) -> Response:
        name = request.path_params["file"]
        if name not in STATIC:
            return secured(Response("Not found", status_code=404), private=False)
        data = resources.files("bulkforce.console").joinpath("static", name).read_bytes()
        response = Response(data, headers={"Content-Type": STATIC[name]})
        response.headers["Cache-Control"] = "public, max-age=300"
        return secured(response, private=False)

    def base_routes(self) -> list[BaseRoute]:
        return [
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.guard(self.logout), methods=["POST"]),
            Route("/static/{file}", self.static, methods=["GET"]),
        ]
