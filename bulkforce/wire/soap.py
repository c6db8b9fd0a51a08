"""SOAP partner API: the login/logout requests and the exact response and fault shapes that
simple-salesforce, jsforce and WSC parse (spec §8.2)."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from bulkforce.wire.decode import DecodeError, load_xml

ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER_NS = "urn:partner.soap.sforce.com"
CONTENT_TYPE = "text/xml; charset=utf-8"
# The System Administrator profile of a fresh org has this shape; nothing reads it.
PROFILE_ID = "00eR0000000bfAdIAI"


class SoapError(Exception):
    """The request is not a SOAP call we can read."""


@dataclass(frozen=True)
class Call:
    """One SOAP call: the operation's local name, its parameters, and the SessionHeader."""

    operation: str
    params: dict[str, str]
    session_id: str | None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(parent: Element, name: str) -> Element | None:
    # by namespace-less local name: clients use every prefix (and default namespace) there is
    for el in parent:
        if isinstance(el.tag, str) and _local(el.tag) == name:
            return el
    return None


def parse_call(data: bytes) -> Call:
    try:
        root = load_xml(data)
    except DecodeError as e:
        raise SoapError(f"the request is not well-formed XML: {e}") from None
    if _local(root.tag) != "Envelope":
        raise SoapError("the request is not a SOAP envelope")
    body = _child(root, "Body")
    op = next((el for el in body if isinstance(el.tag, str)), None) if body is not None else None
    if op is None:
        raise SoapError("the SOAP body names no operation")
    params = {_local(el.tag): (el.text or "") for el in op if isinstance(el.tag, str)}
    session_id = None
    header = _child(root, "Header")
    if header is not None:
        sh = _child(header, "SessionHeader")
        sid = _child(sh, "sessionId") if sh is not None else None
        if sid is not None and sid.text:
            session_id = sid.text.strip()
    return Call(_local(op.tag), params, session_id)


@dataclass(frozen=True)
class LoginResult:
    base: str  # scheme://host[:port] the client reached
    version: str
    org_id: str
    org_name: str
    user_id: str
    username: str
    email: str
    full_name: str
    session_id: str
    session_seconds: int


def _envelope(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{ENV_NS}" xmlns="{PARTNER_NS}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    ).encode()


def login_response(r: LoginResult) -> bytes:
    """Unprefixed elements (simple-salesforce looks tags up literally), LoginResult children in
    WSDL order (WSC reads them in sequence)."""
    org15 = r.org_id[:15]

    def el(name: str, value: str) -> str:
        return f"<{name}>{escape(value)}</{name}>"

    user_info = "".join([
        el("accessibilityMode", "false"),
        el("currencySymbol", "$"),
        el("orgAttachmentFileSizeLimit", "5242880"),
        el("orgDefaultCurrencyIsoCode", "USD"),
        el("orgDisallowHtmlAttachments", "false"),
        el("orgHasPersonAccounts", "false"),
        el("organizationId", r.org_id),
        el("organizationMultiCurrency", "false"),
        el("organizationName", r.org_name),
        el("profileId", PROFILE_ID),
        '<roleId xsi:nil="true"/>',
        el("sessionSecondsValid", str(r.session_seconds)),
        '<userDefaultCurrencyIsoCode xsi:nil="true"/>',
        el("userEmail", r.email),
        el("userFullName", r.full_name),
        el("userId", r.user_id),
        el("userLanguage", "en_US"),
        el("userLocale", "en_US"),
        el("userName", r.username),
        el("userTimeZone", "America/Los_Angeles"),
        el("userType", "Standard"),
        el("userUiSkin", "Theme3"),
    ])  # fmt: skip
    result = "".join([
        el("metadataServerUrl", f"{r.base}/services/Soap/m/{r.version}/{org15}"),
        el("passwordExpired", "false"),
        el("sandbox", "false"),
        el("serverUrl", f"{r.base}/services/Soap/u/{r.version}/{org15}"),
        el("sessionId", r.session_id),
        el("userId", r.user_id),
        f"<userInfo>{user_info}</userInfo>",
    ])  # fmt: skip
    return _envelope(f"<loginResponse><result>{result}</result></loginResponse>")


def logout_response() -> bytes:
    return _envelope("<logoutResponse/>")


def fault(code: str, message: str, fault_type: str = "LoginFault") -> bytes:
    """A SOAP fault under the `sf` prefix: simple-salesforce reads `sf:exceptionCode` literally,
    jsforce reads `faultstring`."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{ENV_NS}" xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>sf:{code}</faultcode>"
        f"<faultstring>{code}: {escape(message)}</faultstring>"
        f'<detail><sf:{fault_type} xsi:type="sf:{fault_type}">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        f"</sf:{fault_type}></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    ).encode()
