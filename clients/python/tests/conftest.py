"""The real stack for the tests: a fresh redis-server and the `authstream` binary (all
routes of both services on one port), each on a free loopback port, started once per
test session and configuration.

The binary is `$AUTHSTREAM_BIN`, by default `<repo>/target/debug/authstream`
(`cargo build --bin authstream`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
FULL_SCOPES = ["generations:write", "events:publish", "users:admin"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary() -> Path:
    path = Path(os.environ.get("AUTHSTREAM_BIN") or REPO / "target/debug/authstream")
    if not path.is_file():
        pytest.fail(
            f"no authstream binary at {path}: run `cargo build --bin authstream` "
            "or set AUTHSTREAM_BIN"
        )
    return path


@dataclass
class User:
    user_id: str
    email: str
    password: str
    access_token: str
    refresh_token: str


@dataclass
class Stack:
    url: str
    secret: str  # of the client "backend" (generations:write events:publish users:admin)
    publisher_secret: str  # of the client "publisher" (events:publish only)
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def user(self) -> User:
        """A new user, registered and signed in over plain HTTP."""
        email = f"user-{uuid.uuid4().hex[:12]}@example.com"
        password = "correct horse battery"
        with httpx.Client(base_url=self.url, timeout=10) as http:
            r = http.post("/auth/register", json={"email": email, "password": password})
            assert r.status_code == 201, r.text
            user_id = r.json()["user_id"]
            r = http.post("/auth/login", json={"email": email, "password": password})
            assert r.status_code == 200, r.text
            body = r.json()
        return User(user_id, email, password, body["access_token"], body["refresh_token"])

    def stream_token(self, user: User, generation_id: str) -> str:
        r = httpx.post(
            f"{self.url}/generations/generate/{generation_id}/stream-token",
            headers={"Authorization": f"Bearer {user.access_token}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return str(r.json()["sse_token"])


def _wait(check: Callable[[], bool], what: str, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    text = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    pytest.fail(f"{what} did not become ready:\n{text}")


def _redis_up(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def start_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Stack]]:
    """Starts a stack with extra environment variables; all are stopped at the end."""
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.fail("redis-server is not installed")
    procs: list[subprocess.Popen[bytes]] = []

    def start(**extra_env: str) -> Stack:
        work = tmp_path_factory.mktemp("stack")
        redis_port = free_port()
        redis_log = work / "redis.log"
        with redis_log.open("wb") as out:  # the child keeps its own descriptor
            procs.append(
                subprocess.Popen(
                    [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--dir", str(work)],
                    stdout=out, stderr=subprocess.STDOUT,
                )
            )
        _wait(lambda: _redis_up(redis_port), "redis-server", redis_log)

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        secret = secrets.token_urlsafe(24)
        publisher_secret = secrets.token_urlsafe(24)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}",
            "AUTHSTREAM_BIND": f"127.0.0.1:{port}",
            "COOKIE_SECURE": "false",
            "LOG_FORMAT": "json",
            "RUST_LOG": "info",
            "SERVICE_CLIENTS": json.dumps([
                {"id": "backend", "secret": secret, "scopes": FULL_SCOPES},
                {"id": "publisher", "secret": publisher_secret, "scopes": ["events:publish"]},
            ]),
            # Generous budgets for the many registrations and logins of the tests;
            # failed logins per email stay tight (a test provokes a real 429 with them).
            "RATE_LIMIT_FREE": "100000/1s",
            "RATE_LIMIT_PAID": "100000/1s",
            "RATE_LIMIT_ANON": "100000/1s",
            "RATE_LIMIT_LOGIN": "3/60s",
            "PASSWORD_HASH_CONCURRENCY": "4",
            **extra_env,
        }
        log = work / "authstream.log"
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen([str(binary())], env=env, stdout=out, stderr=subprocess.STDOUT)
            )
        _wait(lambda: _ready(url), "authstream", log)
        return Stack(url, secret, publisher_secret, log, env)

    yield start
    for proc in reversed(procs):
        _stop(proc)


@pytest.fixture(scope="session")
def stack(start_stack: Callable[..., Stack]) -> Stack:
    """The stack with the default token lifetimes."""
    return start_stack()


@pytest.fixture(scope="session")
def short_stack(start_stack: Callable[..., Stack]) -> Stack:
    """Service and access tokens that live 2 s, with no clock leeway: renewal shows."""
    return start_stack(
        SERVICE_TOKEN_TTL_SECS="2", ACCESS_TOKEN_TTL_SECS="2", JWT_LEEWAY_SECS="0"
    )


# -- recording and faking what travels -----------------------------------------------


@dataclass
class Seen:
    """One request that reached the transport, and its answer's status (None: it
    raised or was faked before the network)."""

    method: str
    path: str
    status: int | None
    body: bytes = b""


class Recorder(httpx.BaseTransport):
    """A real transport wrapped: records every request; `fault(request, n)` may answer
    or raise instead (n: how many requests with this method and path came before), or
    return None to let the request through."""

    def __init__(
        self,
        fault: Callable[[httpx.Request, int, Callable[[], httpx.Response]], httpx.Response | None]
        | None = None,
    ) -> None:
        self.inner = httpx.HTTPTransport()
        self.fault = fault
        self.seen: list[Seen] = []

    def count(self, method: str, path_end: str, status: int | None | str = "any") -> int:
        return sum(
            1
            for s in self.seen
            if s.method == method and s.path.endswith(path_end)
            and (status == "any" or s.status == status)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        n = self.count(request.method, request.url.path)
        seen = Seen(request.method, request.url.path, None, request.content)
        self.seen.append(seen)

        def forward() -> httpx.Response:
            response = self.inner.handle_request(request)
            response.read()
            return response

        if self.fault is not None:
            faked = self.fault(request, n, forward)
            if faked is not None:
                seen.status = faked.status_code
                return faked
        response = forward()
        seen.status = response.status_code
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncRecorder(httpx.AsyncBaseTransport):
    """`Recorder` for the async client. `fault(request, n)` answers with a response
    (nothing is sent), "refuse" (a connection error: nothing sent), "lose" (sent and
    applied, then the answer is lost: a read error) or None (let it through)."""

    def __init__(
        self,
        fault: Callable[[httpx.Request, int], str | httpx.Response | None] | None = None,
    ) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.fault = fault
        self.seen: list[Seen] = []

    def count(self, method: str, path_end: str, status: int | None | str = "any") -> int:
        return sum(
            1
            for s in self.seen
            if s.method == method and s.path.endswith(path_end)
            and (status == "any" or s.status == status)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        n = self.count(request.method, request.url.path)
        seen = Seen(request.method, request.url.path, None, request.content)
        self.seen.append(seen)
        action = self.fault(request, n) if self.fault is not None else None
        if isinstance(action, httpx.Response):
            seen.status = action.status_code
            return action
        if action == "refuse":  # as if the connection could not be made
            raise httpx.ConnectError("refused (test)", request=request)
        response = await self.inner.handle_async_request(request)
        await response.aread()
        seen.status = response.status_code
        if action == "lose":  # applied, but the answer never arrives
            raise httpx.ReadError("answer lost (test)", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def problem(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        headers={"Content-Type": "application/problem+json", **(headers or {})},
        json={"type": "about:blank", "title": code, "status": status,
              "detail": f"{code} (test)", "code": code},
    )


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(id, data) of each event of an SSE stream."""
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event_id, json.loads("\n".join(data))
            event_id, data = None, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                event_id = value
            elif name == "data":
                data.append(value)
