"""A small but real OpenID Connect provider on loopback for the tests: an aiohttp server on a thread of its own that
serves discovery, a JWKS, an authorization endpoint that approves at once (for whoever the test says is signing
in) and a token endpoint that checks the client's secret, the redirect URI, the PKCE S256 verifier and that a code
is used once, and answers an RS256 ID token signed with joserfc.

Knobs for the bad cases: `tamper` (claims laid over the next ID tokens: another aud, iss, nonce, an exp in the
past), `foreign_key` (sign with a key the JWKS does not hold), `token_delay` (seconds the token endpoint waits before
it answers: a slow provider), `seen_authorize` (the query of each authorization request, to check PKCE and nonce were
asked for)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from .threaded_aiohttp import ThreadedServer

CLIENT_ID = "parley-test"
CLIENT_SECRET = "provider-secret-0123456789"


@dataclass
class Provider:
    port: int = 0
    person: dict[str, Any] = field(default_factory=lambda: {"sub": "someone"})
    tamper: dict[str, Any] = field(default_factory=dict)
    foreign_key: bool = False
    token_delay: float = 0.0
    seen_authorize: list[dict[str, str]] = field(default_factory=list)
    token_requests: int = 0
    token_answers: int = 0  # token requests past their delay (answered)

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"})
        self.other = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"})
        self.codes: dict[str, dict[str, Any]] = {}
        self.server = ThreadedServer("oidc provider")

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]})

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def _authorize(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.seen_authorize.append(q)
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return web.Response(status=400, text="bad client or response_type")
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"redirect_uri": q.get("redirect_uri"), "nonce": q.get("nonce"),
                            "challenge": q.get("code_challenge"), "method": q.get("code_challenge_method"),
                            "person": dict(self.person)}
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}")

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        waited = 0.0
        while waited < self.token_delay:  # a slow provider (setting token_delay to 0 lets it answer at once)
            await asyncio.sleep(0.05)
            waited += 0.05
        self.token_answers += 1
        form = dict(await request.post())
        basic = request.headers.get("Authorization", "")
        client = (form.get("client_id"), form.get("client_secret"))
        if basic.startswith("Basic "):
            user, _, pw = base64.b64decode(basic[6:]).decode().partition(":")
            client = (user, pw)
        if client != (CLIENT_ID, CLIENT_SECRET):
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self.codes.pop(str(form.get("code")), None)  # once only
        if grant is None or form.get("grant_type") != "authorization_code":
            return web.json_response({"error": "invalid_grant"}, status=400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant", "error_description": "redirect_uri"}, status=400)
        verifier = str(form.get("code_verifier", ""))
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if grant["method"] != "S256" or digest != grant["challenge"]:
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE"}, status=400)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": grant["nonce"],
                  **grant["person"], **self.tamper}
        key = self.other if self.foreign_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        return web.json_response({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                  "expires_in": 300, "id_token": id_token})

    def start(self) -> Provider:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        self.port = self.server.serve(app)
        return self

    def stop(self) -> None:
        self.server.stop()
