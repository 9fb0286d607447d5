"""AsyncServiceClient: the same behaviour as ServiceClient, as coroutines."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid

import httpx
import pytest

from authstream import AsyncServiceClient, AuthstreamError, ServiceClient

from conftest import AsyncRecorder, Stack, problem, sse_events

TOKEN_PATH = "/auth/service-token"


def aclient(stack: Stack, recorder: AsyncRecorder | None = None, **kw: object) -> AsyncServiceClient:
    return AsyncServiceClient(
        stack.url, "backend", stack.secret, transport=recorder, **kw  # type: ignore[arg-type]
    )


def test_the_async_client_has_the_same_methods_as_coroutines() -> None:
    public = {n for n in dir(ServiceClient) if not n.startswith("_")}
    assert public - {"close"} <= {n for n in dir(AsyncServiceClient) if not n.startswith("_")}
    for name in public - {"close"}:
        assert inspect.iscoroutinefunction(getattr(AsyncServiceClient, name)), name
        assert inspect.signature(getattr(AsyncServiceClient, name)).parameters.keys() == (
            inspect.signature(getattr(ServiceClient, name)).parameters.keys()
        ), name
    assert inspect.iscoroutinefunction(AsyncServiceClient.close)


def test_create_publish_and_the_users_stream_receives_it(stack: Stack) -> None:
    user = stack.user()

    async def main() -> None:
        async with aclient(stack) as c:
            gid = await c.create_generation(user.user_id)
            token = stack.stream_token(user, gid)
            url = f"{stack.url}/generations/generate/{gid}/stream"
            async with httpx.AsyncClient(timeout=10) as http:
                async with http.stream("GET", url, params={"token": token}) as r:
                    assert r.status_code == 200
                    lines: list[str] = []
                    received: list[tuple[str | None, dict[str, object]]] = []

                    async def read() -> None:
                        async for line in r.aiter_lines():
                            lines.append(line)
                        received.extend(sse_events(iter(lines)))

                    reader = asyncio.create_task(read())
                    await asyncio.sleep(0.2)
                    first = await c.publish(gid, "processing", "render", 0.5, "Halfway", step=3)
                    last = await c.publish(gid, "completed", progress=1.0)
                    await asyncio.wait_for(reader, 10)
            assert [e for _, e in received][0] == {"event": "connected", "generation_id": gid}
            assert [(i, e["status"], e.get("step")) for i, e in received[1:]] == [
                (first, "processing", 3), (last, "completed", None)
            ]
            assert (await c.get_generation(gid)).status == "completed"

    asyncio.run(main())


def test_concurrent_tasks_share_one_renewal(short_stack: Stack) -> None:
    user = short_stack.user()
    rec = AsyncRecorder()

    async def main() -> None:
        async with aclient(short_stack, rec) as c:
            gid = await c.create_generation(user.user_id)
            await c.publish(gid, "processing", progress=0.1)
            assert rec.count("POST", TOKEN_PATH) == 1
            await asyncio.sleep(2.2)
            ids = await asyncio.gather(
                *(c.publish(gid, "processing", progress=0.5) for _ in range(20))
            )
            assert len(set(ids)) == 20

    asyncio.run(main())
    assert rec.count("POST", TOKEN_PATH) == 2
    assert not [s for s in rec.seen if s.status == 401]


def test_create_generation_after_a_lost_answer(stack: Stack) -> None:
    user = stack.user()
    rec = AsyncRecorder(
        lambda request, n: "lose" if request.url.path == "/generations" and n == 0 else None
    )

    async def main() -> str:
        async with aclient(stack, rec, base_delay=0.01) as c:
            gid = await c.create_generation(user.user_id)
            assert (await c.get_generation(gid)).owner_id == user.user_id
            with pytest.raises(AuthstreamError) as caught:  # a first attempt's 409 raises
                await c.create_generation(user.user_id, gid)
            assert caught.value.code == "generation_exists"
            return gid

    asyncio.run(main())
    assert [s.status for s in rec.seen if s.path == "/generations"] == [201, 409, 409]


def test_retries_429_and_connection_failures_not_a_lost_publish(stack: Stack) -> None:
    user = stack.user()

    def fault(request: httpx.Request, n: int) -> str | httpx.Response | None:
        if not request.url.path.endswith("/events"):
            return None
        plan: dict[int, str | httpx.Response] = {
            0: problem(429, "rate_limited", {"Retry-After": "1"}),
            1: "refuse",
            3: "lose",
        }
        return plan.get(n)

    rec = AsyncRecorder(fault)

    async def main() -> None:
        async with aclient(stack, rec, base_delay=0.01) as c:
            gid = await c.create_generation(user.user_id)
            started = time.monotonic()
            assert await c.publish(gid, "processing", progress=0.2)  # 429, refused, 202
            assert time.monotonic() - started >= 1.0
            with pytest.raises(httpx.ReadError):  # sent, answer lost: not resent
                await c.publish(gid, "processing", progress=0.3)

    asyncio.run(main())
    assert [s.status for s in rec.seen if s.path.endswith("/events")] == [429, None, 202, 202]


def test_errors_validate_and_revoke(stack: Stack) -> None:
    user = stack.user()

    async def main() -> None:
        async with aclient(stack) as c:
            with pytest.raises(AuthstreamError) as caught:
                await c.publish(f"none-{uuid.uuid4()}", "processing")
            assert (caught.value.code, caught.value.status) == ("not_found", 404)
            gid = await c.create_generation(user.user_id)
            with pytest.raises(AuthstreamError) as caught:
                await c.publish(gid, "exploded")  # type: ignore[arg-type]
            assert caught.value.status == 422 and "status" in caught.value.fields

            claims = await c.validate(user.access_token)
            assert claims.user_id == user.user_id
            await c.revoke_user(user.user_id)
            with pytest.raises(AuthstreamError) as caught:
                await c.validate(user.access_token)
            assert (caught.value.code, caught.value.status) == ("token_revoked", 401)

        async with AsyncServiceClient(stack.url, "backend", "wrong-secret-0123456789") as bad:
            with pytest.raises(AuthstreamError) as caught:
                await bad.revoke_user(user.user_id)
            assert caught.value.code == "invalid_credentials"

    asyncio.run(main())
