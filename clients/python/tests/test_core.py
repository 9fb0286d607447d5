"""The pieces of the sans-IO core that need no server."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from authstream import AuthstreamError, Claims
from authstream._core import Core, NeedToken, Send, Sleep
from authstream._errors import parse_retry_after


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == 30.0


def test_backoff_grows_and_is_capped() -> None:
    core = Core("http://a", "id", "secret", base_delay=1.0, max_delay=5.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)]:
        assert ceiling / 2 <= core.backoff(attempt) <= ceiling
    assert core.delay(1, 3.0) == 3.0  # Retry-After honoured
    assert core.delay(1, 6.0) is None  # longer than max_delay: not worth waiting
    with pytest.raises(ValueError):
        Core("http://a", "id", "secret", max_attempts=0)


def test_the_core_only_describes_io() -> None:
    """Driven by hand: the operation asks for a token, sends, sleeps on a 429, resends."""
    now = [0.0]
    core = Core("http://auth/", "backend", "s3cret", "http://stream", clock=lambda: now[0])
    op = core.revoke_user("u:1")
    assert op.send(None) == NeedToken(None)
    fetch = core.fetch_token()
    action = fetch.send(None)
    assert isinstance(action, Send)
    assert action.request.url == "http://auth/auth/service-token"
    assert action.request.headers["Authorization"] == "Basic YmFja2VuZDpzM2NyZXQ="
    with pytest.raises(StopIteration) as done:
        fetch.send(httpx.Response(200, json={"access_token": "T1", "expires_in": 100}))
    assert done.value.value == "T1"
    assert core.usable_token() == "T1" and core.usable_token(stale="T1") is None
    now[0] = 80.0  # renewal is due a fifth of the lifetime before the end
    assert core.usable_token() is None
    now[0] = 0.0

    action = op.send("T1")
    assert isinstance(action, Send)
    assert action.request.url == "http://auth/auth/users/u:1/revoke"
    assert action.request.headers == {"Authorization": "Bearer T1"}
    limited = httpx.Response(429, headers={"Retry-After": "2"},
                             json={"code": "rate_limited", "status": 429})
    assert op.send(limited) == Sleep(2.0)
    assert op.send(None) == NeedToken(None)
    assert isinstance(op.send("T1"), Send)
    with pytest.raises(StopIteration):
        op.send(httpx.Response(204))


def test_claims_from_json() -> None:
    claims = Claims.from_json({
        "active": True, "sub": "u1", "token_type": "access", "exp": 20, "iat": 10,
        "jti": "j", "iss": "authstream", "aud": "authstream", "email": "a@b.c",
        "roles": ["admin"], "tier": "paid", "sid": "s1", "custom": 1,
    })
    assert claims.user_id == "u1" and claims.has_role("admin") and claims.tier == "paid"
    assert claims.raw["custom"] == 1
    service = Claims.from_json({"sub": "service:b", "scopes": ["events:publish"]})
    assert service.has_scope("events:publish") and not service.has_scope("users:admin")


def test_an_error_without_a_body() -> None:
    error = AuthstreamError.from_response(httpx.Response(503, headers={"Retry-After": "7"}))
    assert (error.code, error.status, error.retry_after) == ("unexpected_response", 503, 7.0)
    assert "503 unexpected_response" in str(error)
