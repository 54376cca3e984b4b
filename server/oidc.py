"""Single sign-on with an OpenID Connect provider (docs/operations.md "Single sign-on", docs/security.md).

The relying party's side of the authorization code flow, with Authlib's OAuth 2 client (authorization URL with
PKCE S256, state and nonce; the code exchanged at the token endpoint with the client secret and the verifier)
and joserfc, Authlib's JOSE library, for the ID token: its signature against the provider's JWKS (RS256/ES256
keys; the set fetched again once when a token names a key it does not hold), then `iss` (the configured
issuer), `aud` (this client; `azp` too when there are several audiences), `exp`, `iat` and `nonce`. Anything
wrong is Failed, which the callback answers 403 with nothing made.

The provider's discovery document and key set are fetched once per process and kept (the key set refreshed on
an unknown key id, at most once a minute).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import Settings

# Authlib (with httpx and its CLI's rich) and joserfc (with cryptography) are imported where they are used, when
# a sign-in happens: every process builds a Provider, few have single sign-on set up, and importing them cost
# every start ~130 ms of CPU (tests/test_startup.py checks a start goes without them).
if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client
    from joserfc.jwk import KeySet

log = logging.getLogger(__name__)

SCOPE = "openid profile email"
TIMEOUT = 10.0          # each call to the provider
LEEWAY = 60             # seconds of clock difference allowed on exp and iat
ALGORITHMS = ["RS256", "ES256", "PS256"]
JWKS_REFRESH = 60.0     # a key set is fetched again at most this often


class Failed(Exception):
    """The sign-in cannot go on: the provider answered wrongly or the ID token does not check out."""


@dataclass(frozen=True)
class Login:
    """What the login step keeps for the callback (in a signed cookie): state, nonce, PKCE verifier, where to go."""

    state: str
    nonce: str
    verifier: str
    next: str


class Provider:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.oidc_issuer is not None  # every process has one; it is used only when set up
        self.issuer = settings.oidc_issuer or ""
        self.client_id = settings.oidc_client_id or ""
        self.client_secret = settings.oidc_client_secret or ""
        self.metadata: dict[str, Any] | None = None
        self.keys: KeySet | None = None
        self.keys_at = 0.0
        self.lock = asyncio.Lock()

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        from authlib.integrations.httpx_client import AsyncOAuth2Client

        return AsyncOAuth2Client(self.client_id, self.client_secret, scope=SCOPE, redirect_uri=redirect_uri,
                                 code_challenge_method="S256", timeout=TIMEOUT, trust_env=False,
                                 follow_redirects=False)

    async def _get_json(self, url: str) -> dict[str, Any]:
        async with self._client("") as client:
            try:
                r = await client.request("GET", url, withhold_token=True)
            except Exception as exc:
                raise Failed(f"the provider did not answer {url}: {exc}") from None
        if r.status_code != 200:
            raise Failed(f"the provider answered {r.status_code} to {url}")
        try:
            data = r.json()
        except ValueError:
            raise Failed(f"the provider's {url} is not JSON") from None
        if not isinstance(data, dict):
            raise Failed(f"the provider's {url} is not a JSON object")
        return data

    async def discover(self) -> dict[str, Any]:
        """The provider's discovery document (kept): its issuer must be the configured one."""
        async with self.lock:
            if self.metadata is None:
                data = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
                if str(data.get("issuer", "")).rstrip("/") != self.issuer:
                    raise Failed(f"the discovery document names the issuer {data.get('issuer')!r}, not {self.issuer}")
                for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(data.get(key), str):
                        raise Failed(f"the discovery document has no {key}")
                self.metadata = data
            return self.metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        meta = await self.discover()
        async with self.lock:
            if self.keys is None or (refresh and time.monotonic() - self.keys_at > JWKS_REFRESH):
                try:
                    self.keys = KeySet.import_key_set(await self._get_json(meta["jwks_uri"]))  # type: ignore[arg-type]
                except (JoseError, ValueError, TypeError, KeyError) as exc:
                    raise Failed(f"the provider's key set is unusable: {exc}") from None
                self.keys_at = time.monotonic()
            return self.keys

    async def login_url(self, redirect_uri: str, next_path: str) -> tuple[str, Login]:
        """The provider's authorization URL (code flow, PKCE S256, state, nonce) and what the callback needs."""
        from authlib.common.security import generate_token

        meta = await self.discover()
        verifier = generate_token(64)
        nonce = secrets.token_urlsafe(24)
        async with self._client(redirect_uri) as client:
            url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier,
                                                         nonce=nonce)
        return url, Login(state=state, nonce=nonce, verifier=verifier, next=next_path)

    async def finish(self, redirect_uri: str, login: Login, code: str) -> dict[str, Any]:
        """Exchange the code and check the ID token; its claims."""
        meta = await self.discover()
        async with self._client(redirect_uri) as client:
            try:
                token = await client.fetch_token(meta["token_endpoint"], code=code, code_verifier=login.verifier,
                                                 grant_type="authorization_code")
            except Exception as exc:  # an OAuth error answer (a used or foreign code), a network failure
                raise Failed(f"the code was not exchanged: {exc}") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise Failed("the token answer has no id_token")
        return await self.verify(id_token, login.nonce)

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of an ID token whose signature, issuer, audience, times and nonce are right."""
        from joserfc import jwt
        from joserfc.errors import InvalidKeyIdError, JoseError

        keys = await self._key_set()
        try:
            try:
                decoded = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            except InvalidKeyIdError:  # the provider rotated its keys: fetch the set again, once
                decoded = jwt.decode(id_token, await self._key_set(refresh=True), algorithms=ALGORITHMS)
            claims = decoded.claims
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY, iss={"essential": True, "value": self.issuer},
                sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise Failed(f"the ID token is refused: {exc}") from None
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.client_id not in audiences:
            raise Failed("the ID token is for another client (aud)")
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise Failed("the ID token is for another client (azp)")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Failed("the ID token names no subject")
        return dict(claims)
