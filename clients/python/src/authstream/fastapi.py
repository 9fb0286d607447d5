"""A FastAPI dependency that lets in requests with a valid authstream access token.

Needs the extra: `pip install 'authstream-client[fastapi]'`.

```python
from fastapi import Depends, FastAPI
from authstream import AsyncServiceClient, Claims
from authstream.fastapi import BearerAuth, install

client = AsyncServiceClient("http://auth:8081", "backend", "secret")
app = FastAPI()
install(app)                       # errors as problem+json
auth = BearerAuth(client)

@app.get("/whoami")
async def whoami(claims: Claims = Depends(auth)) -> dict[str, str]:
    return {"user_id": claims.user_id}
```

Each request's `Authorization: Bearer` token is checked by the auth service's
`/auth/validate` (a network hop per request; revocations count at once). A missing or
refused token answers 401 with the auth service's code and `WWW-Authenticate: Bearer`;
an auth service that is down, unreachable or answers something unexpected gives 503
(`store_unavailable`, with `Retry-After`): nothing is let in that could not be checked.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ._async import AsyncServiceClient
from ._errors import AuthstreamError
from ._models import Claims

__all__ = ["BearerAuth", "ProblemException", "install", "problem_handler"]

logger = logging.getLogger("authstream.fastapi")

_TITLES = {
    "missing_token": "Authentication required",
    "invalid_token": "Invalid token",
    "token_expired": "Token expired",
    "token_revoked": "Token revoked",
    "wrong_token_type": "Wrong token type",
    "store_unavailable": "Service unavailable",
    "overloaded": "Overloaded",
}

_bearer = HTTPBearer(auto_error=False, description="An authstream access token")


class ProblemException(HTTPException):
    """An error answered as `application/problem+json` once `install(app)` ran (without
    it, FastAPI answers `{"detail": <the problem>}` with the same status and headers)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.problem: dict[str, Any] = {
            "type": "about:blank",
            "title": title or _TITLES.get(code, "Error"),
            "status": status,
            "detail": detail,
            "code": code,
        }
        self.code = code
        super().__init__(status_code=status, detail=self.problem, headers=headers)


async def problem_handler(request: Request, exc: Exception) -> JSONResponse:
    """Renders a `ProblemException` as RFC 9457 problem+json."""
    assert isinstance(exc, ProblemException)
    headers = dict(exc.headers or {})
    headers.setdefault("Cache-Control", "no-store")
    return JSONResponse(
        exc.problem,
        status_code=exc.status_code,
        headers=headers,
        media_type="application/problem+json",
    )


def install(app: FastAPI) -> None:
    """Answer `ProblemException`s (what `BearerAuth` raises) as problem+json."""
    app.add_exception_handler(ProblemException, problem_handler)


class BearerAuth:
    """The dependency: `claims: Claims = Depends(BearerAuth(client))`.

    `token_type="service"` accepts service tokens instead of users' access tokens.
    `realm` goes into `WWW-Authenticate`.
    """

    def __init__(
        self,
        client: AsyncServiceClient,
        *,
        token_type: str = "access",
        realm: str = "authstream",
    ) -> None:
        self.client = client
        self.token_type = token_type
        self.realm = realm

    def _unauthorized(self, code: str, detail: str, *, presented: bool) -> ProblemException:
        challenge = f'Bearer realm="{self.realm}"'
        if presented:  # RFC 6750: error= only for a token that was sent and refused
            challenge += ', error="invalid_token"'
        return ProblemException(401, code, detail, headers={"WWW-Authenticate": challenge})

    @staticmethod
    def _unavailable(detail: str, retry_after: float | None, code: str) -> ProblemException:
        seconds = max(1, round(retry_after)) if retry_after is not None else 1
        return ProblemException(503, code, detail, headers={"Retry-After": str(seconds)})

    async def __call__(
        self,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Claims:
        if credentials is None or not credentials.credentials.strip():
            raise self._unauthorized(
                "missing_token", "an Authorization: Bearer token is required", presented=False
            )
        try:
            return await self.client.validate(
                credentials.credentials.strip(), token_type=self.token_type
            )
        except AuthstreamError as error:
            if error.status == 401:
                raise self._unauthorized(
                    error.code, error.detail or "the token was refused", presented=True
                ) from None
            if error.status == 422:  # a token the auth service could not even read
                raise self._unauthorized(
                    "invalid_token", "the token was refused", presented=True
                ) from None
            if error.status == 503 and error.code in ("store_unavailable", "overloaded"):
                raise self._unavailable(
                    error.detail or "the token could not be checked", error.retry_after, error.code
                ) from None
            logger.warning("token validation answered %s %s", error.status, error.code)
            raise self._unavailable(
                "the token could not be checked", error.retry_after, "store_unavailable"
            ) from None
        except httpx.TransportError as error:
            logger.warning("the auth service could not be reached: %r", error)
            raise self._unavailable(
                "the auth service could not be reached", None, "store_unavailable"
            ) from None
