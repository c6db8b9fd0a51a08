"""Who may do what (issue #9): the one place that decides whether a caller may see a job.

The model, Salesforce's where it has one:
- The generated or `--token` admin token, and users marked admin (`bulkforce user add --admin`),
  may reset the org's records and see and act on every job.
- A user with Manage Data Integrations (`--manage-data-integrations`) sees and acts on every
  user's jobs (Salesforce's permission to monitor bulk jobs), but may not reset.
- Everyone else sees and acts on their own jobs only. Another user's job answers exactly as a
  job that does not exist (Bulk 2.0: 404 NOT_FOUND; Bulk 1.0: InvalidJob "Unable to find
  object"), so its existence is not revealed either; job lists hold only the caller's jobs.

Every service that hands out a job by id (ingest, query, Bulk 1.0, the console) passes what the
store returned through `visible_job`, and every job list filters with `owner_filter`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bulkforce.errors import Kind, ServiceError
from bulkforce.model import Job


@dataclass(frozen=True)
class Caller:
    """The user behind a request, with the permissions that decide access."""

    user_id: str
    is_admin: bool = False
    manage_data_integrations: bool = False

    @property
    def sees_every_job(self) -> bool:
        return self.is_admin or self.manage_data_integrations


def visible_job(caller: Caller, job: Job | None) -> Job | None:
    """`job` if `caller` may see and act on it, else None: the caller's services then answer
    it as a job that does not exist."""
    if job is None or caller.sees_every_job or job.created_by == caller.user_id:
        return job
    return None


def owner_filter(caller: Caller) -> str | None:
    """The `created_by` a job list is limited to for `caller` (None: every user's jobs)."""
    return None if caller.sees_every_job else caller.user_id


def require_admin(caller: Caller, action: str) -> None:
    """Refuse `action` (worded for the message) unless the caller is an admin: 403
    INSUFFICIENT_ACCESS, as Salesforce answers a call the user's profile does not allow."""
    if not caller.is_admin:
        raise ServiceError(
            Kind.INSUFFICIENT_ACCESS,
            f"You do not have sufficient access to {action}: it needs an admin user",
        )
