"""ServiceClient against the real authstream binary on a real Redis."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from authstream import AuthstreamError, ServiceClient

from conftest import Recorder, Stack, free_port, problem, sse_events

TOKEN_PATH = "/auth/service-token"


def client(stack: Stack, recorder: Recorder | None = None, **kw: object) -> ServiceClient:
    return ServiceClient(
        stack.url, "backend", stack.secret, transport=recorder, **kw  # type: ignore[arg-type]
    )


# -- the service token -----------------------------------------------------------------


def test_service_token_is_fetched_once_and_reused(stack: Stack) -> None:
    rec = Recorder()
    user = stack.user()
    with client(stack, rec) as c:
        gid = c.create_generation(user.user_id)
        c.publish(gid, "processing", "a", 0.1, "one")
        c.publish(gid, "processing", "b", 0.2, "two")
    assert rec.count("POST", TOKEN_PATH) == 1
    basic = [s for s in rec.seen if s.path == TOKEN_PATH]
    assert basic[0].status == 200


def test_service_token_is_renewed_before_it_expires(short_stack: Stack) -> None:
    """Tokens live 2 s with no leeway: without renewal the second publish would get 401."""
    rec = Recorder()
    user = short_stack.user()
    with client(short_stack, rec) as c:
        gid = c.create_generation(user.user_id)
        c.publish(gid, "processing", progress=0.1)
        time.sleep(2.2)
        c.publish(gid, "processing", progress=0.2)
    assert rec.count("POST", TOKEN_PATH) == 2
    assert not [s for s in rec.seen if s.status == 401], rec.seen


def test_concurrent_callers_share_one_renewal(short_stack: Stack) -> None:
    rec = Recorder()
    user = short_stack.user()
    with client(short_stack, rec) as c:
        gid = c.create_generation(user.user_id)
        assert rec.count("POST", TOKEN_PATH) == 1
        time.sleep(2.2)  # the token is now past its renewal time (and expired)
        threads = 16
        barrier = threading.Barrier(threads)
        ids: list[str] = []
        errors: list[BaseException] = []

        def work() -> None:
            barrier.wait()
            try:
                ids.append(c.publish(gid, "processing", progress=0.5))
            except BaseException as exc:  # noqa: BLE001 - collected for the assert
                errors.append(exc)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert errors == []
    assert len(set(ids)) == threads
    assert rec.count("POST", TOKEN_PATH) == 2  # one renewal for sixteen callers


def test_a_401_token_expired_renews_once_and_resends(short_stack: Stack) -> None:
    """The client is told the token lives an hour; the server says it expired after 2 s."""

    def lie_about_lifetime(
        request: httpx.Request, n: int, forward: Callable[[], httpx.Response]
    ) -> httpx.Response | None:
        if request.url.path != TOKEN_PATH:
            return None
        real = forward()
        body = real.json()
        body["expires_in"] = 3600
        return httpx.Response(200, json=body)

    rec = Recorder(lie_about_lifetime)
    user = short_stack.user()
    with client(short_stack, rec) as c:
        gid = c.create_generation(user.user_id)
        time.sleep(2.5)
        event_id = c.publish(gid, "processing", progress=0.5)
    assert event_id
    events = [s for s in rec.seen if s.path.endswith("/events")]
    assert [s.status for s in events] == [401, 202]
    assert rec.count("POST", TOKEN_PATH) == 2


def test_a_second_token_expired_is_raised(stack: Stack) -> None:
    def always_expired(
        request: httpx.Request, n: int, forward: Callable[[], httpx.Response]
    ) -> httpx.Response | None:
        if request.url.path.endswith("/events"):
            return problem(401, "token_expired")
        return None

    rec = Recorder(always_expired)
    with client(stack, rec) as c:
        with pytest.raises(AuthstreamError) as caught:
            c.publish("whatever", "processing")
    assert (caught.value.code, caught.value.status) == ("token_expired", 401)
    assert rec.count("POST", "/events") == 2
    assert rec.count("POST", TOKEN_PATH) == 2


def test_wrong_secret_raises_invalid_credentials_at_once(stack: Stack) -> None:
    rec = Recorder()
    with ServiceClient(stack.url, "backend", "not-the-secret-at-all", transport=rec) as c:
        with pytest.raises(AuthstreamError) as caught:
            c.create_generation("someone")
    assert (caught.value.code, caught.value.status) == ("invalid_credentials", 401)
    assert rec.count("POST", TOKEN_PATH) == 1
    assert rec.count("POST", "/generations") == 0


# -- generations and events ----------------------------------------------------------------


def test_create_publish_and_the_users_stream_receives_it(stack: Stack) -> None:
    user = stack.user()
    with client(stack) as c:
        gid = c.create_generation(user.user_id)
        assert str(uuid.UUID(gid, version=4)) == gid
        generation = c.get_generation(gid)
        assert (generation.owner_id, generation.status) == (user.user_id, "pending")

        token = stack.stream_token(user, gid)
        url = f"{stack.url}/generations/generate/{gid}/stream"
        with httpx.stream("GET", url, params={"token": token}, timeout=10) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            events = sse_events(r.iter_lines())
            _, connected = next(events)
            assert connected == {"event": "connected", "generation_id": gid}

            event_id = c.publish(
                gid, "processing", "schema_extraction", 0.5, "Extracting schema...",
                current_file="a.py", estimated_time_remaining=12,
            )
            got_id, progress = next(events)
            assert got_id == event_id
            assert progress["event"] == "progress"
            assert progress["generation_id"] == gid
            assert progress["status"] == "processing"
            assert progress["stage"] == "schema_extraction"
            assert progress["progress"] == 0.5
            assert progress["message"] == "Extracting schema..."
            assert progress["current_file"] == "a.py"
            assert progress["estimated_time_remaining"] == 12

            done_id = c.publish(gid, "completed", progress=1.0, message="Done")
            got_id, done = next(events)
            assert (got_id, done["status"]) == (done_id, "completed")
            assert next(events, None) is None  # the server ends the stream
        assert c.get_generation(gid).status == "completed"


def test_create_generation_with_a_chosen_id(stack: Stack) -> None:
    user = stack.user()
    gid = f"job:{uuid.uuid4().hex}"
    with client(stack) as c:
        assert c.create_generation(user.user_id, gid) == gid
        assert c.get_generation(gid).owner_id == user.user_id


def lose_first_answer(path: str) -> Callable[..., httpx.Response | None]:
    """The first request to `path` reaches the server, its answer is lost."""

    def fault(
        request: httpx.Request, n: int, forward: Callable[[], httpx.Response]
    ) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == path and n == 0:
            forward()
            raise httpx.ReadError("answer lost (test)", request=request)
        return None

    return fault


def test_create_generation_after_a_lost_answer_succeeds_once(stack: Stack) -> None:
    rec = Recorder(lose_first_answer("/generations"))
    user = stack.user()
    gid = str(uuid.uuid4())
    with client(stack, rec, base_delay=0.01) as c:
        assert c.create_generation(user.user_id, gid) == gid
        assert c.get_generation(gid).owner_id == user.user_id
    # The first attempt created it (its answer lost); the retry's 409 counts as success.
    assert [s.status for s in rec.seen if s.path == "/generations"] == [None, 409]


def test_create_generation_after_a_lost_answer_generated_id(stack: Stack) -> None:
    rec = Recorder(lose_first_answer("/generations"))
    user = stack.user()
    with client(stack, rec, base_delay=0.01) as c:
        gid = c.create_generation(user.user_id)
        assert c.get_generation(gid).owner_id == user.user_id
    sent = [json.loads(s.body)["generation_id"] for s in rec.seen if s.path == "/generations"]
    assert sent == [gid, gid]  # the client's own id, both times


def test_a_409_on_the_first_attempt_is_raised(stack: Stack) -> None:
    user = stack.user()
    gid = str(uuid.uuid4())
    rec = Recorder()
    with client(stack, rec) as c:
        c.create_generation(user.user_id, gid)
        with pytest.raises(AuthstreamError) as caught:
            c.create_generation(user.user_id, gid)
    assert (caught.value.code, caught.value.status) == ("generation_exists", 409)
    assert rec.count("POST", "/generations") == 2  # no retry


def test_a_409_after_a_lost_answer_for_someone_elses_generation_is_raised(stack: Stack) -> None:
    owner, other = stack.user(), stack.user()
    gid = str(uuid.uuid4())
    with client(stack) as c:
        c.create_generation(owner.user_id, gid)
    rec = Recorder(lose_first_answer("/generations"))
    with client(stack, rec, base_delay=0.01) as c:
        with pytest.raises(AuthstreamError) as caught:
            c.create_generation(other.user_id, gid)
    assert caught.value.code == "generation_exists"
    assert rec.count("POST", "/generations") == 2


def test_publish_is_not_resent_after_a_read_timeout(stack: Stack) -> None:
    def time_out_after_sending(
        request: httpx.Request, n: int, forward: Callable[[], httpx.Response]
    ) -> httpx.Response | None:
        if request.url.path.endswith("/events") and n == 0:
            forward()
            raise httpx.ReadTimeout("no answer in time (test)", request=request)
        return None

    rec = Recorder(time_out_after_sending)
    user = stack.user()
    with client(stack, rec, base_delay=0.01) as c:
        gid = c.create_generation(user.user_id)
        with pytest.raises(httpx.ReadTimeout):
            c.publish(gid, "processing", progress=0.3)
        assert rec.count("POST", "/events") == 1
        c.publish(gid, "completed", progress=1.0)
    # The stream's history: the one event that was applied, then the terminal one.
    token = stack.stream_token(user, gid)
    url = f"{stack.url}/generations/generate/{gid}/stream"
    with httpx.stream("GET", url, params={"token": token}, timeout=10) as r:
        events = [data for _, data in sse_events(r.iter_lines())]
    assert [(e["event"], e.get("progress")) for e in events] == [
        ("connected", None), ("progress", 0.3), ("progress", 1.0)
    ]


def test_connection_failures_before_sending_are_retried(stack: Stack) -> None:
    def refuse_twice(
        request: httpx.Request, n: int, forward: Callable[[], httpx.Response]
    ) -> httpx.Response | None:
        if request.url.path.endswith("/events") and n < 2:
            raise httpx.ConnectError("refused (test)", request=request)
        return None

    rec = Recorder(refuse_twice)
    user = stack.user()
    with client(stack, rec, base_delay=0.01) as c:
        gid = c.create_generation(user.user_id)
        assert c.publish(gid, "processing", progress=0.5)
    assert rec.count("POST", "/events") == 3


def test_an_unreachable_service_is_given_up_after_max_attempts(stack: Stack) -> None:
    rec = Recorder()
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with ServiceClient(dead, "backend", "x" * 20, transport=rec, max_attempts=3,
                       base_delay=0.05) as c:
        with pytest.raises(httpx.ConnectError):
            c.revoke_user("someone")
    assert rec.count("POST", TOKEN_PATH) == 3
    assert time.monotonic() - started < 2


def test_429_is_retried_after_retry_after(stack: Stack) -> None:
    def limited_once(
        request: httpx.Request, n: int, forward: Callable[[], httpx.Response]
    ) -> httpx.Response | None:
        if request.url.path.endswith("/events") and n == 0:
            return problem(429, "rate_limited", {"Retry-After": "1"})
        return None

    rec = Recorder(limited_once)
    user = stack.user()
    with client(stack, rec) as c:
        gid = c.create_generation(user.user_id)
        started = time.monotonic()
        assert c.publish(gid, "processing", progress=0.5)
        elapsed = time.monotonic() - started
    assert elapsed >= 1.0
    assert [s.status for s in rec.seen if s.path.endswith("/events")] == [429, 202]


def test_429_longer_than_max_delay_is_raised_at_once(stack: Stack) -> None:
    def limited(
        request: httpx.Request, n: int, forward: Callable[[], httpx.Response]
    ) -> httpx.Response | None:
        if request.url.path.endswith("/revoke"):
            return problem(429, "rate_limited", {"Retry-After": "30"})
        return None

    rec = Recorder(limited)
    started = time.monotonic()
    with client(stack, rec, max_delay=5) as c:
        with pytest.raises(AuthstreamError) as caught:
            c.revoke_user("someone")
    assert time.monotonic() - started < 1
    assert (caught.value.code, caught.value.status, caught.value.retry_after) == (
        "rate_limited", 429, 30.0
    )
    assert rec.count("POST", "/revoke") == 1


def test_429_is_given_up_after_max_attempts(stack: Stack) -> None:
    def limited(
        request: httpx.Request, n: int, forward: Callable[[], httpx.Response]
    ) -> httpx.Response | None:
        if request.url.path.endswith("/revoke"):
            return problem(429, "rate_limited", {"Retry-After": "0"})
        return None

    rec = Recorder(limited)
    with client(stack, rec, max_attempts=3) as c:
        with pytest.raises(AuthstreamError) as caught:
            c.revoke_user("someone")
    assert caught.value.code == "rate_limited"
    assert rec.count("POST", "/revoke") == 3


def test_a_real_429_reads_as_rate_limited_with_retry_after(stack: Stack) -> None:
    """Failed logins of one email are limited to 3 a minute on this stack."""
    user = stack.user()
    answers = [
        httpx.post(f"{stack.url}/auth/login", json={"email": user.email, "password": "wrong-guess"},
                   timeout=10)
        for _ in range(5)
    ]
    limited = [r for r in answers if r.status_code == 429]
    assert limited, [r.status_code for r in answers]
    error = AuthstreamError.from_response(limited[0])
    assert (error.code, error.status) == ("rate_limited", 429)
    assert error.retry_after is not None and error.retry_after > 0
    first = AuthstreamError.from_response(answers[0])
    assert (first.code, first.status) == ("invalid_credentials", 401)


def test_a_503_is_not_retried_except_for_create_generation(stack: Stack) -> None:
    def unavailable_once(
        request: httpx.Request, n: int, forward: Callable[[], httpx.Response]
    ) -> httpx.Response | None:
        if request.method == "POST" and request.url.path != TOKEN_PATH and n == 0:
            return problem(503, "store_unavailable", {"Retry-After": "0"})
        return None

    rec = Recorder(unavailable_once)
    user = stack.user()
    with client(stack, rec, base_delay=0.01) as c:
        gid = c.create_generation(user.user_id)  # retried: idempotent by its id
        with pytest.raises(AuthstreamError) as caught:
            c.publish(gid, "processing", progress=0.1)
    assert (caught.value.code, caught.value.status, caught.value.retry_after) == (
        "store_unavailable", 503, 0.0
    )
    assert [s.status for s in rec.seen if s.path == "/generations"] == [503, 201]
    assert rec.count("POST", "/events") == 1


# -- errors ---------------------------------------------------------------------------------


def test_errors_carry_code_status_detail_and_fields(stack: Stack) -> None:
    user = stack.user()
    with client(stack) as c:
        gid = c.create_generation(user.user_id)
        with pytest.raises(AuthstreamError) as caught:
            c.publish(gid, "processing", progress=2.0)
        e = caught.value
        assert (e.code, e.status) == ("validation_failed", 422)
        assert "progress" in e.fields and e.detail
        assert e.retry_after is None

        with pytest.raises(AuthstreamError) as caught:
            c.publish(f"no-such-{uuid.uuid4()}", "processing")
        assert (caught.value.code, caught.value.status) == ("not_found", 404)

        c.publish(gid, "failed", message="gave up")
        with pytest.raises(AuthstreamError) as caught:
            c.publish(gid, "processing")
        assert (caught.value.code, caught.value.status) == ("generation_finished", 409)

        with pytest.raises(AuthstreamError) as caught:
            c.create_generation(user.user_id, "not a valid id!")
        assert caught.value.status == 422 and "generation_id" in caught.value.fields

        with pytest.raises(AuthstreamError) as caught:
            c.revoke_user(str(uuid.uuid4()))
        assert (caught.value.code, caught.value.status) == ("not_found", 404)

    with ServiceClient(stack.url, "publisher", stack.publisher_secret) as p:
        with pytest.raises(AuthstreamError) as caught:
            p.create_generation(user.user_id)
        assert (caught.value.code, caught.value.status) == ("insufficient_scope", 403)
        with pytest.raises(AuthstreamError) as caught:
            p.revoke_user(user.user_id)
        assert caught.value.status == 403


def test_an_answer_that_is_not_problem_json_is_an_authstream_error(stack: Stack) -> None:
    def proxy_page(
        request: httpx.Request, n: int, forward: Callable[[], httpx.Response]
    ) -> httpx.Response | None:
        if request.url.path.endswith("/revoke"):
            return httpx.Response(502, text="<html>Bad Gateway</html>",
                                  headers={"Content-Type": "text/html"})
        return None

    with client(stack, Recorder(proxy_page)) as c:
        with pytest.raises(AuthstreamError) as caught:
            c.revoke_user("someone")
    assert (caught.value.code, caught.value.status) == ("unexpected_response", 502)


# -- validate and revoke --------------------------------------------------------------------


def test_validate_returns_the_claims(stack: Stack) -> None:
    user = stack.user()
    with client(stack) as c:
        claims = c.validate(user.access_token)
        assert claims.user_id == user.user_id == claims.sub
        assert claims.token_type == "access"
        assert claims.email == user.email
        assert claims.tier == "free"
        assert claims.sid and claims.jti and claims.exp > claims.iat
        assert claims.raw["active"] is True

        service = c.validate(c.service_token(), token_type="service")
        assert service.sub == "service:backend"
        assert service.has_scope("events:publish")

        for token, code in [
            ("not-a-jwt", "invalid_token"),
            (user.refresh_token, "wrong_token_type"),
            (c.service_token(), "wrong_token_type"),
        ]:
            with pytest.raises(AuthstreamError) as caught:
                c.validate(token)
            assert (caught.value.code, caught.value.status) == (code, 401), token[:10]


def test_validate_an_expired_token(short_stack: Stack) -> None:
    user = short_stack.user()
    time.sleep(2.5)
    with client(short_stack) as c:
        with pytest.raises(AuthstreamError) as caught:
            c.validate(user.access_token)
    assert (caught.value.code, caught.value.status) == ("token_expired", 401)


def test_revoke_user_makes_their_token_fail_validation(stack: Stack) -> None:
    user, bystander = stack.user(), stack.user()
    with client(stack) as c:
        assert c.validate(user.access_token).user_id == user.user_id
        c.revoke_user(user.user_id)
        with pytest.raises(AuthstreamError) as caught:
            c.validate(user.access_token)
        assert (caught.value.code, caught.value.status) == ("token_revoked", 401)
        assert c.validate(bystander.access_token).user_id == bystander.user_id


# -- lifetime ----------------------------------------------------------------------------------


def test_close_closes_only_what_the_client_owns(stack: Stack) -> None:
    with client(stack) as c:
        pass
    assert c._http.is_closed
    own = httpx.Client()
    with ServiceClient(stack.url, "backend", stack.secret, http_client=own) as c:
        assert c.service_token()
    assert not own.is_closed
    own.close()
