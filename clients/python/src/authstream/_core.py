"""The client's logic, without I/O (sans-IO).

Every operation is a generator that yields what it needs done (`Send` a request,
`Sleep`, `NeedToken`) and is sent back the result (an `httpx.Response`, a token) or has
the failure thrown into it (an `httpx.TransportError`). `ServiceClient` drives these
generators with blocking calls and `AsyncServiceClient` with awaits: the requests,
retries, token renewal and the reading of answers are written once, here.
"""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from ._errors import AuthstreamError
from ._models import Claims, Generation, Status

T = TypeVar("T")

USER_AGENT = "authstream-client-python/0.1.0"

# Failures where the request certainly did not reach the server: retrying cannot apply
# it twice. A read timeout or a dropped connection after sending may have been applied.
NOT_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


@dataclass(frozen=True)
class HttpRequest:
    """A request to send: the shells turn it into an `httpx.Request`."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Send:
    """Send this request; resume with its `httpx.Response` (body read) or throw the
    `httpx.TransportError` it failed with."""

    request: HttpRequest


@dataclass(frozen=True)
class Sleep:
    """Wait this many seconds, then resume with None."""

    seconds: float


@dataclass(frozen=True)
class NeedToken:
    """Resume with a usable service token other than `stale` (renewing it if needed,
    one renewal at a time: the shell holds its lock around `Core.fetch_token`)."""

    stale: str | None = None


Action = Send | Sleep | NeedToken
Op = Generator[Action, object, T]


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float  # on the core's clock
    expires_at: float


def _send(request: HttpRequest) -> Op[httpx.Response]:
    result = yield Send(request)
    if not isinstance(result, httpx.Response):  # pragma: no cover - a shell's bug
        raise TypeError(f"expected an httpx.Response, got {type(result).__name__}")
    return result


def _need_token(stale: str | None) -> Op[str]:
    result = yield NeedToken(stale)
    if not isinstance(result, str):  # pragma: no cover - a shell's bug
        raise TypeError(f"expected a token, got {type(result).__name__}")
    return result


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        raise AuthstreamError(
            "unexpected_response",
            response.status_code,
            "the answer is not a JSON object",
        )
    return body


def _segment(value: str) -> str:
    """One path segment: ids of the contract (`A-Za-z0-9._~:-`) pass unchanged."""
    return quote(value, safe=":")


class Core:
    """State (the service token) and operations shared by both clients."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        stream_url: str | None = None,
        *,
        max_attempts: int = 4,
        base_delay: float = 0.25,
        max_delay: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if base_delay < 0 or max_delay < 0:
            raise ValueError("delays must not be negative")
        self.auth_url = base_url.rstrip("/")
        self.stream_url = (stream_url or base_url).rstrip("/")
        self.client_id = client_id
        self._basic = "Basic " + base64.b64encode(
            f"{client_id}:{client_secret}".encode()
        ).decode("ascii")
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._clock = clock
        self._token: _Token | None = None

    # -- the service token ---------------------------------------------------------

    def usable_token(self, stale: str | None = None) -> str | None:
        """The cached service token, unless it is due for renewal or is `stale`."""
        token = self._token  # one read: another thread may replace it meanwhile
        if token is None or token.value == stale or self._clock() >= token.renew_at:
            return None
        return token.value

    def fetch_token(self) -> Op[str]:
        """Get a new service token (`POST /auth/service-token`, HTTP Basic) and keep it.

        Asking again cannot do harm (a token is issued, nothing changes), so this is
        retried like a read.
        """
        request = HttpRequest(
            "POST",
            f"{self.auth_url}/auth/service-token",
            {"Authorization": self._basic},
        )
        started = self._clock()
        response = yield from self._exchange(lambda _: request, idempotent=True)
        body = _json_object(response)
        value = body.get("access_token")
        if not isinstance(value, str) or not value:
            raise AuthstreamError(
                "unexpected_response", response.status_code, "no access_token in the answer"
            )
        lifetime = body.get("expires_in")
        ttl = float(lifetime) if isinstance(lifetime, (int, float)) else 60.0
        # Renew a fifth of the lifetime (at most a minute) before it ends, counted
        # from before the request was sent.
        margin = min(60.0, ttl / 5)
        self._token = _Token(value, started + ttl - margin, started + ttl)
        return value

    def forget_token(self) -> None:
        self._token = None

    # -- one exchange, with its retries --------------------------------------------

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter before attempt `attempt + 1`."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """How long to wait before retrying; None: not worth it (the server asks for
        longer than `max_delay`)."""
        if retry_after is None:
            return self.backoff(attempt)
        if retry_after > self.max_delay:
            return None
        return retry_after

    def _exchange(
        self,
        build: Callable[[str | None], HttpRequest],
        *,
        authenticated: bool = False,
        idempotent: bool = False,
        passthrough: Callable[[httpx.Response, bool], bool] | None = None,
    ) -> Op[httpx.Response]:
        """Send a request until it succeeds, retrying only what cannot be applied twice.

        Always retried (up to `max_attempts`, with backoff): connection failures before
        the request was sent and 429 (after its `Retry-After`). When `idempotent`, also
        any other transport failure and 5xx. A 401 `token_expired` of a service token
        renews the token and resends once. `passthrough(response, maybe_applied)` may
        hand an error answer back instead of raising it; `maybe_applied` tells whether
        an earlier attempt may have been applied (its answer was lost or was a 5xx).
        """
        attempt = 0
        renewed = False
        stale: str | None = None
        maybe_applied = False
        while True:
            attempt += 1
            token = (yield from _need_token(stale)) if authenticated else None
            request = build(token)
            try:
                response = yield from _send(request)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, NOT_SENT)
                maybe_applied = maybe_applied or sent
                if (idempotent or not sent) and attempt < self.max_attempts:
                    yield Sleep(self.backoff(attempt))
                    continue
                raise
            if response.status_code < 400:
                return response
            if passthrough is not None and passthrough(response, maybe_applied):
                return response
            error = AuthstreamError.from_response(response)
            if authenticated and error.code == "token_expired" and not renewed:
                # Our clock and the server's disagree: renew once, and resend (a 401 was
                # not applied). Not counted as an attempt.
                renewed = True
                stale = token
                attempt -= 1
                continue
            server_failed = response.status_code >= 500
            maybe_applied = maybe_applied or server_failed
            retryable = response.status_code == 429 or (idempotent and server_failed)
            if retryable and attempt < self.max_attempts:
                wait = self.delay(attempt, error.retry_after)
                if wait is not None:
                    yield Sleep(wait)
                    continue
            raise error

    def _authorized(self, token: str | None) -> dict[str, str]:
        assert token is not None
        return {"Authorization": f"Bearer {token}"}

    # -- the operations --------------------------------------------------------------

    def create_generation(self, owner_id: str, generation_id: str | None = None) -> Op[str]:
        """`POST /generations` for `owner_id` with a client-made id: retried on any
        failure, since the id makes a retry idempotent."""
        gid = generation_id if generation_id is not None else str(uuid.uuid4())
        url = f"{self.auth_url}/generations"
        body = {"generation_id": gid, "owner_id": owner_id}

        def build(token: str | None) -> HttpRequest:
            return HttpRequest("POST", url, self._authorized(token), body)

        response = yield from self._exchange(
            build,
            authenticated=True,
            idempotent=True,
            # A 409 after an attempt whose answer was lost may be that attempt's doing.
            passthrough=lambda r, maybe_applied: maybe_applied and r.status_code == 409,
        )
        if response.status_code == 409:
            conflict = AuthstreamError.from_response(response)
            if conflict.code != "generation_exists":
                raise conflict
            # Ours if it belongs to the owner we asked for (the id is ours: a UUID v4
            # unless the caller chose it).
            existing = yield from self.get_generation(gid)
            if existing.owner_id != owner_id:
                raise conflict
            return gid
        created = _json_object(response).get("generation_id")
        return created if isinstance(created, str) else gid

    def get_generation(self, generation_id: str) -> Op[Generation]:
        """`GET /generations/{id}` with the service token."""
        url = f"{self.auth_url}/generations/{_segment(generation_id)}"
        response = yield from self._exchange(
            lambda token: HttpRequest("GET", url, self._authorized(token)),
            authenticated=True,
            idempotent=True,
        )
        return Generation.from_json(_json_object(response))

    def publish(
        self,
        generation_id: str,
        status: Status,
        stage: str | None = None,
        progress: float | None = None,
        message: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Op[str]:
        """`POST {stream_url}/generations/{id}/events`; the event's id."""
        url = f"{self.stream_url}/generations/{_segment(generation_id)}/events"
        body: dict[str, Any] = {"status": status}
        if stage is not None:
            body["stage"] = stage
        if progress is not None:
            body["progress"] = progress
        if message is not None:
            body["message"] = message
        body.update(extra or {})
        response = yield from self._exchange(
            lambda token: HttpRequest("POST", url, self._authorized(token), body),
            authenticated=True,
        )
        event_id = _json_object(response).get("id")
        if not isinstance(event_id, str):
            raise AuthstreamError(
                "unexpected_response", response.status_code, "no event id in the answer"
            )
        return event_id

    def revoke_user(self, user_id: str) -> Op[None]:
        """`POST /auth/users/{id}/revoke`: everything the user holds stops working."""
        url = f"{self.auth_url}/auth/users/{_segment(user_id)}/revoke"
        yield from self._exchange(
            lambda token: HttpRequest("POST", url, self._authorized(token)),
            authenticated=True,
        )

    def validate(self, token: str, token_type: str = "access") -> Op[Claims]:
        """`POST /auth/validate` for someone else's token (no service token needed)."""
        request = HttpRequest(
            "POST",
            f"{self.auth_url}/auth/validate",
            {},
            {"token": token},
            {} if token_type == "access" else {"token_type": token_type},
        )
        response = yield from self._exchange(lambda _: request)
        return Claims.from_json(_json_object(response))
