"""The one exception every error answer of authstream is raised as."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["AuthstreamError", "parse_retry_after"]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


class AuthstreamError(Exception):
    """An error answer (RFC 9457 problem+json) from authstream.

    `code` is the stable, machine-readable code (`token_expired`, `generation_exists`,
    `rate_limited`, ...), `status` the HTTP status, `retry_after` the seconds of a
    `Retry-After` header (429, 503) or None, `detail` the human-readable explanation and
    `fields` the bad fields of a 422 `validation_failed` (field name to problem).
    An answer that is not problem+json (a proxy's 502 page, say) is raised as this too,
    with the code `unexpected_response`.
    """

    code: str
    status: int
    retry_after: float | None
    detail: str
    title: str
    fields: dict[str, str]
    problem: Mapping[str, Any]

    def __init__(
        self,
        code: str,
        status: int,
        detail: str = "",
        *,
        title: str = "",
        retry_after: float | None = None,
        fields: Mapping[str, str] | None = None,
        problem: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}" if detail else f"{status} {code}")
        self.code = code
        self.status = status
        self.detail = detail
        self.title = title
        self.retry_after = retry_after
        self.fields = dict(fields or {})
        self.problem = dict(problem or {})

    def __repr__(self) -> str:
        return (
            f"AuthstreamError(code={self.code!r}, status={self.status!r}, "
            f"detail={self.detail!r}, retry_after={self.retry_after!r})"
        )

    @classmethod
    def from_response(cls, response: httpx.Response) -> AuthstreamError:
        """The error an (already read) error answer stands for."""
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        body: Any = None
        content_type = response.headers.get("content-type", "")
        if "json" in content_type:
            try:
                body = response.json()
            except ValueError:
                body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            raw_fields = body.get("fields")
            fields = (
                {str(k): str(v) for k, v in raw_fields.items()}
                if isinstance(raw_fields, dict)
                else {}
            )
            detail = body.get("detail")
            title = body.get("title")
            return cls(
                body["code"],
                response.status_code,
                detail if isinstance(detail, str) else "",
                title=title if isinstance(title, str) else "",
                retry_after=retry_after,
                fields=fields,
                problem=body,
            )
        return cls(
            "unexpected_response",
            response.status_code,
            f"an answer that is not problem+json ({content_type or 'no content type'})",
            title=response.reason_phrase,
            retry_after=retry_after,
        )
