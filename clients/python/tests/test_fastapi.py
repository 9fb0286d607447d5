"""The FastAPI dependency (authstream.fastapi) and the README's example backend."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from authstream import AsyncServiceClient, Claims, ServiceClient
from authstream.fastapi import BearerAuth, install

from conftest import Stack, free_port, sse_events

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fastapi_backend.py"


def app_for(client: AsyncServiceClient, *, problem_json: bool = True) -> FastAPI:
    app = FastAPI()
    if problem_json:
        install(app)
    auth = BearerAuth(client)

    @app.get("/me")
    async def me(claims: Claims = Depends(auth)) -> dict[str, Any]:
        return {"user_id": claims.user_id, "email": claims.email, "roles": list(claims.roles)}

    return app


@pytest.fixture
def api(stack: Stack) -> Iterator[TestClient]:
    client = AsyncServiceClient(stack.url, "backend", stack.secret)
    with TestClient(app_for(client)) as http:
        yield http


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert (body["status"], body["code"], body["type"]) == (status, code, "about:blank")
    assert body["title"] and body["detail"]
    return body


def test_a_valid_token_gets_its_claims(api: TestClient, stack: Stack) -> None:
    user = stack.user()
    r = api.get("/me", headers={"Authorization": f"Bearer {user.access_token}"})
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": user.user_id, "email": user.email, "roles": []}


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Bearer ", "Bearer"])
def test_no_bearer_token_is_401_missing_token(api: TestClient, header: str | None) -> None:
    r = api.get("/me", headers={"Authorization": header} if header is not None else {})
    assert_problem(r, 401, "missing_token")
    assert r.headers["www-authenticate"] == 'Bearer realm="authstream"'


def test_a_refused_token_is_401_with_its_code(api: TestClient, stack: Stack) -> None:
    user = stack.user()
    r = api.get("/me", headers={"Authorization": "Bearer not-a-jwt"})
    assert_problem(r, 401, "invalid_token")
    assert r.headers["www-authenticate"] == 'Bearer realm="authstream", error="invalid_token"'

    r = api.get("/me", headers={"Authorization": f"Bearer {user.refresh_token}"})
    assert_problem(r, 401, "wrong_token_type")

    with ServiceClient(stack.url, "backend", stack.secret) as admin:
        admin.revoke_user(user.user_id)
    r = api.get("/me", headers={"Authorization": f"Bearer {user.access_token}"})
    assert_problem(r, 401, "token_revoked")
    assert "error=\"invalid_token\"" in r.headers["www-authenticate"]


def test_an_unreachable_auth_service_is_503_never_a_pass(stack: Stack) -> None:
    user = stack.user()
    down = AsyncServiceClient(f"http://127.0.0.1:{free_port()}", "backend", "x" * 20,
                              max_attempts=1)
    with TestClient(app_for(down)) as http:
        r = http.get("/me", headers={"Authorization": f"Bearer {user.access_token}"})
    assert_problem(r, 503, "store_unavailable")
    assert r.headers["retry-after"] == "1"


def test_without_install_the_problem_is_fastapis_detail(stack: Stack) -> None:
    client = AsyncServiceClient(stack.url, "backend", stack.secret)
    with TestClient(app_for(client, problem_json=False)) as http:
        r = http.get("/me")
    assert r.status_code == 401
    assert r.json()["detail"]["code"] == "missing_token"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_the_readme_example_backend_publishes_progress(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_URL", stack.url)
    monkeypatch.setenv("AUTHSTREAM_SECRET", stack.secret)
    spec = importlib.util.spec_from_file_location("fastapi_backend", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "fastapi_backend", example)
    spec.loader.exec_module(example)

    user = stack.user()
    with TestClient(example.app) as http:
        assert_problem(http.post("/jobs"), 401, "missing_token")
        # The background job runs before TestClient hands the answer back.
        r = http.post("/jobs", headers={"Authorization": f"Bearer {user.access_token}"})
        assert r.status_code == 200, r.text
        generation_id = r.json()["generation_id"]

    token = stack.stream_token(user, generation_id)
    url = f"{stack.url}/generations/generate/{generation_id}/stream"
    with httpx.stream("GET", url, params={"token": token}, timeout=10) as s:
        events = [e for _, e in sse_events(s.iter_lines())]
    assert [(e["event"], e.get("status"), e.get("stage")) for e in events] == [
        ("connected", None, None),
        ("progress", "processing", "parsing"),
        ("progress", "processing", "extracting"),
        ("progress", "processing", "writing"),
        ("progress", "completed", "done"),
    ]
