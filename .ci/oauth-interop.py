"""Off-the-shelf clients configured from the issuer URL alone.

PyJWT's PyJWKClient verifies an access token with the keys at the discovered
`jwks_uri`; Authlib's OAuth 2.0 client gets a service token by client credentials from
the discovered `token_endpoint`, introspects it at the `introspection_endpoint` and
revokes it at the `revocation_endpoint`.

Usage: oauth-interop.py ISSUER_URL CLIENT_ID CLIENT_SECRET
"""

import secrets
import sys

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session

issuer, client_id, client_secret = sys.argv[1:4]


def check(condition, what):
    if not condition:
        sys.exit(f"oauth-interop: FAILED: {what}")
    print(f"oauth-interop: ok: {what}")


# Discovery: the issuer URL is all a client is given.
meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5).json()
check(meta["issuer"] == issuer, "the discovered issuer is the issuer URL")
same = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=5).json()
check(same == meta, "RFC 8414 and OpenID locations serve the same document")
check(all(meta[k].startswith(issuer) for k in (
    "jwks_uri", "token_endpoint", "introspection_endpoint", "revocation_endpoint")),
    "every endpoint is under the issuer URL")

# A user's access token, verified by PyJWT with the discovered keys.
email = f"interop-{secrets.token_hex(6)}@example.com"
password = "interop-password-1"
r = requests.post(f"{issuer}/auth/register", json={"email": email, "password": password}, timeout=5)
check(r.status_code == 201, "a user registers")
login = requests.post(f"{issuer}/auth/login", json={"email": email, "password": password}, timeout=5).json()
access = login["access_token"]
jwks = jwt.PyJWKClient(meta["jwks_uri"])
key = jwks.get_signing_key_from_jwt(access)
claims = jwt.decode(
    access,
    key,
    algorithms=meta["token_signing_alg_values_supported"],
    audience="authstream",
    issuer=meta["issuer"],
)
check(claims["token_type"] == "access" and claims["sid"] == login["session_id"],
      "PyJWKClient verifies an access token (EdDSA) with the keys at jwks_uri")
head, body, sig = access.split(".")
forged = f"{head}.{body}.{sig[:-4]}AAAA"
try:
    jwt.decode(forged, key, algorithms=meta["token_signing_alg_values_supported"],
               audience="authstream", issuer=meta["issuer"])
    check(False, "a forged signature is refused")
except jwt.InvalidSignatureError:
    check(True, "a forged signature is refused")

# Client credentials with Authlib, both ways of sending the secret.
basic = OAuth2Session(client_id, client_secret, token_endpoint_auth_method="client_secret_basic")
token = basic.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
check(token["token_type"] == "Bearer" and "revocations:read" in token["scope"],
      "Authlib gets a service token by client credentials (client_secret_basic)")
post = OAuth2Session(client_id, client_secret, token_endpoint_auth_method="client_secret_post",
                     scope="events:publish")
narrowed = post.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
check(narrowed["scope"] == "events:publish",
      "Authlib gets a narrowed service token (client_secret_post, scope)")

# Introspection and revocation at the discovered endpoints.
service = token["access_token"]
answer = basic.introspect_token(meta["introspection_endpoint"], token=service).json()
check(answer["active"] is True and answer["client_id"] == client_id
      and answer["scope"] == token["scope"], "Authlib introspects the service token: active")
answer = basic.introspect_token(meta["introspection_endpoint"], token=access,
                                token_type_hint="access_token").json()
check(answer["active"] is True and answer["sub"] == claims["sub"],
      "Authlib introspects the user's access token: active")
answer = basic.introspect_token(meta["introspection_endpoint"], token=login["refresh_token"]).json()
check(answer == {"active": False}, "a refresh token is not active")
r = basic.revoke_token(meta["revocation_endpoint"], token=service, token_type_hint="access_token")
check(r.status_code == 200, "Authlib revokes the service token")
answer = basic.introspect_token(meta["introspection_endpoint"], token=service).json()
check(answer == {"active": False}, "the revoked token is no longer active")
r = basic.revoke_token(meta["revocation_endpoint"], token=login["refresh_token"],
                       token_type_hint="refresh_token")
answer = basic.introspect_token(meta["introspection_endpoint"], token=access).json()
check(r.status_code == 200 and answer == {"active": False},
      "revoking the refresh token ends the session: its access token is not active")
wrong = OAuth2Session(client_id, "not-the-secret-0123456789")
r = wrong.introspect_token(meta["introspection_endpoint"], token=narrowed["access_token"])
check(r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic"),
      "introspection with a wrong secret: 401 with a Basic challenge")
print("oauth-interop: all passed")
