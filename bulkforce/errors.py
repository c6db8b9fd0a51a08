"""Domain errors raised by the service layer. Each API's wire layer maps `kind` to its own
status code and exception code (Bulk 2.0: INVALIDJOB...; Bulk 1.0: InvalidJob...)."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    NOT_FOUND = "not_found"
    # a retired API version (REST answers 410)
    GONE = "gone"
    # authenticated, but the user lacks the permission (403)
    INSUFFICIENT_ACCESS = "insufficient_access"
    INVALID_JOB = "invalid_job"
    INVALID_JOB_STATE = "invalid_job_state"
    INVALID_ENTITY = "invalid_entity"
    INVALID_BATCH = "invalid_batch"
    FEATURE_NOT_ENABLED = "feature_not_enabled"
    API_ERROR = "api_error"
    CLIENT_INPUT = "client_input"
    JSON_PARSE = "json_parse"
    UNSUPPORTED_MEDIA = "unsupported_media"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    INVALID_SESSION = "invalid_session"
    INVALID_XML = "invalid_xml"
    INVALID_VERSION = "invalid_version"
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    # logins (OAuth token endpoint, SOAP login): each front words these its own way
    INVALID_LOGIN = "invalid_login"
    INVALID_CLIENT_ID = "invalid_client_id"
    INVALID_CLIENT = "invalid_client"
    INVALID_GRANT = "invalid_grant"
    UNSUPPORTED_GRANT = "unsupported_grant"
    UNKNOWN = "unknown"
    # a fault on our side that a retry may not meet (database unreachable, disk full): 503
    UNAVAILABLE = "unavailable"
    # REST resources (sobjects, limits)
    ENTITY_IS_DELETED = "entity_is_deleted"
    INVALID_FIELD = "invalid_field"
    # REST record writes (sObject rows, collections, tree, composite)
    PRECONDITION_FAILED = "precondition_failed"
    LIMIT_EXCEEDED = "limit_exceeded"
    MALFORMED_ID = "malformed_id"
    INVALID_INPUT = "invalid_input"
    # queries (issue #10): bad SOQL carries the soql engine's own errorCode
    QUERY = "query"
    INVALID_LOCATOR = "invalid_locator"
    JOB_NOT_COMPLETE = "job_not_complete"
    VERSION_CONFLICT = "version_conflict"


class ServiceError(Exception):
    def __init__(self, kind: Kind, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        # an exact errorCode that overrides the kind's (SOQL errors: MALFORMED_QUERY, ...)
        self.code = code


class Stop(Exception):
    """The job was aborted, deleted, or taken over while this worker ran it."""
