"""`AsyncServiceClient`: the core's operations driven with awaits."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ._core import USER_AGENT, Core, HttpRequest, NeedToken, Op, Send, Sleep
from ._models import Claims, Generation, Status
from ._sync import DEFAULT_TIMEOUT

T = TypeVar("T")


class AsyncServiceClient:
    """`ServiceClient` for asyncio: the same methods, as coroutines, and the same
    retries and token renewal (one renewal at a time across tasks).

    Use it from one event loop (create it in the app's lifespan, say).
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
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
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
        self._http = http_client or httpx.AsyncClient(
            timeout=timeout, transport=transport, headers={"User-Agent": USER_AGENT}
        )
        self._lock = asyncio.Lock()

    # -- driving the core ------------------------------------------------------------

    async def _run(self, op: Op[T]) -> T:
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
                    value = await self._send(action.request)
                elif isinstance(action, Sleep):
                    await asyncio.sleep(action.seconds)
                elif isinstance(action, NeedToken):
                    value = await self._token(action.stale)
            except Exception as exc:  # handed to the operation, which decides
                error = exc

    async def _send(self, request: HttpRequest) -> httpx.Response:
        built = self._http.build_request(
            request.method,
            request.url,
            headers=dict(request.headers),
            params=dict(request.params) or None,
            json=request.json,
        )
        return await self._http.send(built)

    async def _token(self, stale: str | None) -> str:
        token = self._core.usable_token(stale)
        if token is not None:
            return token
        async with self._lock:
            # Whoever held the lock before us may have renewed it already.
            token = self._core.usable_token(stale)
            if token is not None:
                return token
            return await self._run(self._core.fetch_token())

    # -- the API -----------------------------------------------------------------------

    async def service_token(self) -> str:
        """The current service token (fetched or renewed if needed)."""
        return await self._token(None)

    async def create_generation(self, owner_id: str, generation_id: str | None = None) -> str:
        """See `ServiceClient.create_generation`."""
        return await self._run(self._core.create_generation(owner_id, generation_id))

    async def get_generation(self, generation_id: str) -> Generation:
        """See `ServiceClient.get_generation`."""
        return await self._run(self._core.get_generation(generation_id))

    async def publish(
        self,
        generation_id: str,
        status: Status,
        stage: str | None = None,
        progress: float | None = None,
        message: str | None = None,
        **extra: Any,
    ) -> str:
        """See `ServiceClient.publish`."""
        return await self._run(
            self._core.publish(generation_id, status, stage, progress, message, extra)
        )

    async def revoke_user(self, user_id: str) -> None:
        """See `ServiceClient.revoke_user`."""
        await self._run(self._core.revoke_user(user_id))

    async def validate(self, token: str, *, token_type: str = "access") -> Claims:
        """See `ServiceClient.validate`."""
        return await self._run(self._core.validate(token, token_type))

    # -- lifetime ----------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connections (not those of an `http_client` passed in)."""
        if self._owns_http:
            await self._http.aclose()

    aclose = close

    async def __aenter__(self) -> AsyncServiceClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
