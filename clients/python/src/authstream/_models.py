"""Typed shapes of what authstream answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Claims", "Generation", "Status"]

Status = Literal["pending", "processing", "completed", "failed"]
"""A generation's status, as events carry it."""


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    if isinstance(value, str):
        return tuple(value.split())
    return ()


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) else 0


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Claims:
    """A valid token's claims, as `/auth/validate` answers them.

    `sub` is the user id for an access token (`user_id` says so), `service:<client id>`
    for a service token. Every claim, including ones this class does not name, is in
    `raw`.
    """

    sub: str
    token_type: str
    exp: int
    iat: int
    jti: str
    iss: str
    aud: str
    email: str | None = None
    roles: tuple[str, ...] = ()
    tier: str | None = None
    sid: str | None = None
    scopes: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def user_id(self) -> str:
        """The subject: a user id for an access token."""
        return self.sub

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Claims:
        aud = body.get("aud")
        return cls(
            sub=str(body.get("sub", "")),
            token_type=str(body.get("token_type", "")),
            exp=_int(body.get("exp")),
            iat=_int(body.get("iat")),
            jti=str(body.get("jti", "")),
            iss=str(body.get("iss", "")),
            aud=" ".join(aud) if isinstance(aud, list) else str(aud or ""),
            email=_opt_str(body.get("email")),
            roles=_strings(body.get("roles")),
            tier=_opt_str(body.get("tier")),
            sid=_opt_str(body.get("sid")),
            scopes=_strings(body.get("scopes", body.get("scope"))),
            raw=dict(body),
        )


@dataclass(frozen=True)
class Generation:
    """A generation as `GET /generations/{id}` answers it."""

    generation_id: str
    owner_id: str
    status: str
    progress: float
    stage: str | None
    created_at: int
    updated_at: int
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Generation:
        progress = body.get("progress")
        return cls(
            generation_id=str(body.get("generation_id", "")),
            owner_id=str(body.get("owner_id", "")),
            status=str(body.get("status", "")),
            progress=float(progress) if isinstance(progress, (int, float)) else 0.0,
            stage=_opt_str(body.get("stage")),
            created_at=_int(body.get("created_at")),
            updated_at=_int(body.get("updated_at")),
            raw=dict(body),
        )
