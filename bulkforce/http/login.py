"""Logging in (spec §8): the OAuth 2.0 token, revoke and userinfo endpoints, the identity URL,
SOAP partner login/logout, and the REST version list and resource map clients call first.

The login endpoints and `GET /services/data/` are the only routes that answer without a token.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bulkforce.auth.service import AuthService, Issued
from bulkforce.auth.throttle import LoginThrottle
from bulkforce.errors import Kind, ServiceError
from bulkforce.http import body
from bulkforce.http.auth import principal_of
from bulkforce.http.bulk2 import error_response, json_response
from bulkforce.http.routing import Router
from bulkforce.http.versions import MAX_VERSION, MIN_VERSION, api_version, rest_version
from bulkforce.wire import oauth, soap

SOAP_LOGIN_MESSAGE = "Invalid username, password, security token; or user locked out."
_SOAP_CODES: dict[Kind, str] = {
    Kind.INVALID_LOGIN: "INVALID_LOGIN",
    Kind.INVALID_SESSION: "INVALID_SESSION_ID",
    Kind.INVALID_VERSION: "UNSUPPORTED_API_VERSION",
    Kind.INVALID_XML: "INVALID_OPERATION",
    Kind.API_ERROR: "INVALID_OPERATION",
    # a body the server cannot read (bad gzip, over the size limit): the caller's fault
    Kind.CLIENT_INPUT: "INVALID_OPERATION",
    Kind.INVALID_JOB: "INVALID_OPERATION",
    Kind.UNSUPPORTED_MEDIA: "INVALID_OPERATION",
    Kind.UNAVAILABLE: "SERVER_UNAVAILABLE",
}


def base_url(request: Request) -> str:
    """scheme://host[:port] as the client reached us: that is the instance URL it gets back."""
    return f"{request.url.scheme}://{request.url.netloc}"


def client_address(request: Request) -> str:
    """The key logins are limited by per client (its address as the socket sees it)."""
    return f"addr:{request.client.host}" if request.client else "addr:?"


def release_label(version: int) -> str:
    # Three releases a year; 59.0 was Winter '24.
    n = version - 59
    return f"{('Winter', 'Spring', 'Summer')[n % 3]} '{24 + n // 3}"


class OAuthRoutes:
    """`/services/oauth2/*` and the identity URL; errors as OAuth JSON (spec §8.1)."""

    def __init__(self, auth: AuthService, org_id: str, throttle: LoginThrottle) -> None:
        self.auth = auth
        self.org_id = org_id
        self.throttle = throttle
        # Signs token responses when the client presented no secret (refresh grant without
        # one): nothing can verify that signature anyway, since the secret is stored hashed.
        self._key = secrets.token_bytes(32)

    def error(self, request: Request, err: ServiceError) -> Response:
        if err.kind in oauth.ERRORS:
            return json_response(oauth.error_body(err.kind, err.message), 400)
        return error_response(err)

    def register(self, router: Router) -> None:
        self.router = router
        router.add("/services/oauth2/token", self, public=True, post=self.token)
        router.add("/services/oauth2/revoke", self, public=True, post=self.revoke, get=self.revoke)
        router.add("/services/oauth2/userinfo", self, get=self.userinfo, post=self.userinfo)
        router.add("/id/{org}/{user}", self, get=self.identity)

    async def _form(self, request: Request) -> dict[str, str]:
        """Body (form-encoded) and query parameters: Salesforce accepts either."""
        params = dict(request.query_params)
        data = await body.read_all(request)
        if data:
            params.update(parse_qsl(data.decode("utf-8", errors="replace")))
        return params

    @staticmethod
    def _basic(request: Request) -> tuple[str, str] | None:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ServiceError(Kind.INVALID_CLIENT, "invalid client credentials") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise ServiceError(Kind.INVALID_CLIENT, "invalid client credentials")
        return unquote(client_id), unquote(secret)

    async def token(self, request: Request, params: dict[str, str]) -> Response:
        form = await self._form(request)
        grant = form.get("grant_type", "")
        basic = self._basic(request)
        client_id, secret = (
            basic if basic else (form.get("client_id", ""), form.get("client_secret"))
        )
        if grant not in ("password", "client_credentials", "refresh_token"):
            raise ServiceError(Kind.UNSUPPORTED_GRANT, "grant type not supported")
        username = form.get("username", "") if grant == "password" else ""
        keys = [client_address(request), f"user:{username.lower()}" if username else ""]

        def check() -> Issued:  # on the login executor: every grant may hash a secret
            if grant == "password":
                app = self.auth.check_client(client_id, secret or "")
                return self.auth.login_password(username, form.get("password", ""), app.client_id)
            if grant == "client_credentials":
                return self.auth.login_client_credentials(
                    self.auth.check_client(client_id, secret or "")
                )
            app = self.auth.check_client(client_id, secret or None)
            return self.auth.login_refresh(app, form.get("refresh_token", ""))

        issued = await self.throttle.run(keys, check)
        return json_response(self._token_body(request, issued, secret))

    def _token_body(self, request: Request, issued: Issued, secret: str | None) -> dict[str, Any]:
        key = secret.encode() if secret else self._key
        return oauth.token_response(
            base_url(request), self.org_id, issued.user.user_id, issued.access_token,
            issued.issued_at_ms, key,
        )  # fmt: skip

    async def revoke(self, request: Request, params: dict[str, str]) -> Response:
        form = await self._form(request)
        token = form.get("token", "")
        if not token or not await run_in_threadpool(self.auth.revoke, token):
            return json_response(
                {"error": "unsupported_token_type", "error_description": "this token type is not supported"},
                400,
            )  # fmt: skip
        return Response(status_code=200)

    def _userinfo(self, request: Request, version: str = "59.0") -> dict[str, Any]:
        p = principal_of(request)
        info = oauth.userinfo(
            base_url(request), self.org_id, p.user_id, p.username, p.email, p.full_name, version
        )
        # only the URLs this server answers
        urls = info["urls"]
        info["urls"] = {k: u for k, u in urls.items() if self.router.exists(urlsplit(u).path)}
        return info

    async def userinfo(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(self._userinfo(request))

    async def identity(self, request: Request, params: dict[str, str]) -> Response:
        p = principal_of(request)
        org = params["org"]
        if org[:15] != self.org_id[:15] or params["user"][:15] != p.user_id[:15]:
            # Salesforce answers 403 when the identity URL is not the token's own user
            return json_response(
                [{"errorCode": "Bad_Id", "message": "Bad_Id"}], 403
            )  # fmt: skip
        return json_response(self._userinfo(request))


class SoapRoutes:
    """`POST /services/Soap/u/{ver}[/{orgId}]`: partner `login()` and `logout()`."""

    def __init__(
        self, auth: AuthService, org_id: str, org_name: str, throttle: LoginThrottle
    ) -> None:
        self.auth = auth
        self.org_id = org_id
        self.org_name = org_name
        self.throttle = throttle

    def error(self, request: Request, err: ServiceError) -> Response:
        if err.kind is Kind.METHOD_NOT_ALLOWED:  # not a SOAP call at all: a plain 405
            return error_response(err)
        code = _SOAP_CODES.get(err.kind, "UNKNOWN_EXCEPTION")
        message = SOAP_LOGIN_MESSAGE if err.kind is Kind.INVALID_LOGIN else err.message
        fault_type = "LoginFault" if err.kind is Kind.INVALID_LOGIN else "UnexpectedErrorFault"
        return Response(
            soap.fault(code, message, fault_type),
            status_code=500,
            headers={"Content-Type": soap.CONTENT_TYPE},
        )

    def register(self, router: Router) -> None:
        router.add("/services/Soap/u/{ver}", self, public=True, post=self.call)
        router.add("/services/Soap/u/{ver}/{org}", self, public=True, post=self.call)

    async def call(self, request: Request, params: dict[str, str]) -> Response:
        version = api_version(params["ver"])
        try:
            call = soap.parse_call(await body.read_all(request))
        except soap.SoapError as e:
            raise ServiceError(Kind.INVALID_XML, str(e)) from None
        if call.operation == "login":
            username = call.params.get("username", "").strip()
            issued = await self.throttle.run(
                [client_address(request), f"user:{username.lower()}" if username else ""],
                self.auth.login_password, username, call.params.get("password", ""),
            )  # fmt: skip
            p = issued.user
            result = soap.LoginResult(
                base=base_url(request), version=version, org_id=self.org_id,
                org_name=self.org_name, user_id=p.user_id, username=p.username, email=p.email,
                full_name=p.full_name, session_id=issued.access_token,
                session_seconds=self.auth.settings.session_seconds,
            )  # fmt: skip
            return self._ok(soap.login_response(result))
        if call.operation == "logout":
            who = await run_in_threadpool(self.auth.authenticate, call.session_id or "")
            if who is None:
                raise ServiceError(
                    Kind.INVALID_SESSION, "Invalid Session ID found in SessionHeader"
                )
            await run_in_threadpool(self.auth.logout, who)
            return self._ok(soap.logout_response())
        raise ServiceError(
            Kind.API_ERROR, f"{call.operation}: this server answers only login and logout on SOAP"
        )

    @staticmethod
    def _ok(data: bytes) -> Response:
        return Response(data, headers={"Content-Type": soap.CONTENT_TYPE})


class VersionRoutes:
    """`GET /services/data/` (public: the sf CLI asks before logging in) and the resource map."""

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.router: Router | None = None

    def error(self, request: Request, err: ServiceError) -> Response:
        return error_response(err)

    def register(self, router: Router) -> None:
        self.router = router  # the resource map lists what is routed, once every route is in
        router.add("/services/data", self, public=True, get=self.versions)
        router.add("/services/data/v{ver}", self, get=self.resources)

    async def versions(self, request: Request, params: dict[str, str]) -> Response:
        return json_response([
            {"label": release_label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
            for v in range(MIN_VERSION, MAX_VERSION + 1)
        ])  # fmt: skip

    async def resources(self, request: Request, params: dict[str, str]) -> Response:
        version = rest_version(params["ver"])
        root = f"/services/data/v{version}"
        p = principal_of(request)
        names = self.router.resources("/services/data/v{ver}") if self.router else []
        resources: dict[str, str] = {n: f"{root}/{n}" for n in names}
        resources["identity"] = oauth.identity_url(base_url(request), self.org_id, p.user_id)
        return json_response(resources)
