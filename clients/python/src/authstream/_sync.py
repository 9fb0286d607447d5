"""`ServiceClient`: the core's operations driven with blocking httpx calls."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ._core import USER_AGENT, Core, HttpRequest, NeedToken, Op, Send, Sleep
from ._models import Claims, Generation, Status

T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class ServiceClient:
    """A backend's client of authstream, authenticated as a configured service client.

    `base_url` is the auth service, `stream_url` the stream service (by default the
    same, as with the single-process `authstream`). The service token is fetched on
    first use and renewed before it expires, one renewal at a time however many threads
    share the client (and once more if the server calls it expired).

    Retries (with exponential backoff, at most `max_attempts` tries, waiting at most
    `max_delay` seconds at a time) happen only where a retry cannot apply a request
    twice: a 429 (after its `Retry-After`; raised at once when that is longer than
    `max_delay`), a connection that failed before the request was sent, and
    `create_generation`, whose client-made id makes it idempotent. Anything else raises:
    error answers as `AuthstreamError`, transport failures as `httpx.TransportError`.

    Pass `transport` or a whole `http_client` to change how requests travel (a client
    passed in is not closed by `close()`).
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        stream_url: str | None = None,
        *,
        max_attempts: int = 4,
        max_delay: float = 10.0,
        base_delay: float = 0.25,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._core = Core(
            base_url,
            client_id,
            client_secret,
            stream_url,
            max_attempts=max_attempts,
            base_delay=base_delay,
            max_delay=max_delay,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            timeout=timeout, transport=transport, headers={"User-Agent": USER_AGENT}
        )
        self._lock = threading.Lock()

    # -- driving the core ------------------------------------------------------------

    def _run(self, op: Op[T]) -> T:
        value: object = None
        error: BaseException | None = None
        while True:
            try:
                action = op.throw(error) if error is not None else op.send(value)
            except StopIteration as done:
                result: T = done.value
                return result
            value, error = None, None
            try:
                if isinstance(action, Send):
                    value = self._send(action.request)
                elif isinstance(action, Sleep):
                    time.sleep(action.seconds)
                elif isinstance(action, NeedToken):
                    value = self._token(action.stale)
            except Exception as exc:  # handed to the operation, which decides
                error = exc

    def _send(self, request: HttpRequest) -> httpx.Response:
        built = self._http.build_request(
            request.method,
            request.url,
            headers=dict(request.headers),
            params=dict(request.params) or None,
            json=request.json,
        )
        return self._http.send(built)

    def _token(self, stale: str | None) -> str:
        token = self._core.usable_token(stale)
        if token is not None:
            return token
        with self._lock:
            # Whoever held the lock before us may have renewed it already.
            token = self._core.usable_token(stale)
            if token is not None:
                return token
            return self._run(self._core.fetch_token())

    # -- the API -----------------------------------------------------------------------

    def service_token(self) -> str:
        """The current service token (fetched or renewed if needed)."""
        return self._token(None)

    def create_generation(self, owner_id: str, generation_id: str | None = None) -> str:
        """Create a generation owned by `owner_id`; its id (a UUID v4 unless given).

        Retried on any failure: a 409 `generation_exists` for its own id after an
        attempt whose answer was lost counts as success (on a first attempt it raises).
        """
        return self._run(self._core.create_generation(owner_id, generation_id))

    def get_generation(self, generation_id: str) -> Generation:
        """A generation's status, progress and stage."""
        return self._run(self._core.get_generation(generation_id))

    def publish(
        self,
        generation_id: str,
        status: Status,
        stage: str | None = None,
        progress: float | None = None,
        message: str | None = None,
        **extra: Any,
    ) -> str:
        """Publish a progress event to every stream of the generation; the event's id.

        `extra` fields (`estimated_time_remaining`, `current_file`, ...) pass through to
        the streams. Not retried once sent: a retry could publish the event twice.
        """
        return self._run(
            self._core.publish(generation_id, status, stage, progress, message, extra)
        )

    def revoke_user(self, user_id: str) -> None:
        """Revoke everything of a user: tokens, sessions, open streams (scope
        `users:admin`)."""
        self._run(self._core.revoke_user(user_id))

    def validate(self, token: str, *, token_type: str = "access") -> Claims:
        """A user's Bearer token checked by `/auth/validate`: its claims, or
        `AuthstreamError` with the precise code (`token_expired`, `token_revoked`, ...).
        `token_type="service"` checks a service token instead."""
        return self._run(self._core.validate(token, token_type))

    # -- lifetime ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections (not those of an `http_client` passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
