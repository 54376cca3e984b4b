"""Rate limits of verification and reset mails, per address mailed and per client address (real process,
rate limits on): a script cannot mail someone over and over, nor mail many people from one address."""

from __future__ import annotations

from typing import Any

from support.api import Api, unique


def test_mail_requests_are_limited_per_address_and_per_client(spawn: Any) -> None:
    """Five reset requests for one address (any case) pass, the sixth is 429 with Retry-After; the client's
    own bucket (20 an hour) then refuses mail to fresh addresses too, sign-up with an address included."""
    server = spawn(PARLEY_RATE_LIMITS="on")
    client = Api(server.url)
    target = f"{unique('t')}@mail.example.org"
    codes = [client.post("/api/password-reset", json={"email": target if n % 2 else target.upper()}).status_code
             for n in range(6)]
    assert codes == [202] * 5 + [429]
    r = client.post("/api/password-reset", json={"email": target})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    fresh = [client.post("/api/password-reset", json={"email": f"{unique('f')}@mail.example.org"}).status_code
             for _ in range(16)]
    assert fresh.count(202) == 13 and fresh[-1] == 429, fresh  # 20 in all: 6 + 1 above, 13 here
    r = client.post("/api/users", json={"username": unique(), "password": "correct horse battery",
                                        "email": f"{unique('s')}@mail.example.org"})
    assert r.status_code == 429, r.text
