"""With no SMTP server set, mail is written under the data directory and `parley mail list` / `parley mail show
ID` print it, so a demo can follow a verification or reset link; `parley user passwd NAME` sets a password and
ends every session of the user."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support.api import Api, unique
from support.processes import ROOT

PARLEY = [sys.executable, "-m", "server"]


def parley(args: list[str], data: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    base.update({"PARLEY_SECRET": "test-secret-0123456789abcdef", "PARLEY_DATA_DIR": str(data), **env})
    return subprocess.run([*PARLEY, *args], cwd=ROOT, env=base, input=stdin, capture_output=True, text=True,
                          timeout=120)


def newest_link(data: Path, path: str, to: str) -> str:
    """The `path` link of the newest mail to `to`, as `parley mail list` and `parley mail show` print it."""
    deadline = time.time() + 30
    while time.time() < deadline:
        listing = parley(["mail", "list"], data)
        assert listing.returncode == 0, listing.stderr
        for line in listing.stdout.splitlines():
            if to in line:
                shown = parley(["mail", "show", line.split()[0]], data)
                assert shown.returncode == 0, shown.stderr
                found = re.search(r"http\S+" + re.escape(path) + r"\?token=\S+", shown.stdout)
                if found:
                    return found.group(0)
        time.sleep(0.2)
    raise AssertionError(f"no {path} mail to {to}: {parley(['mail', 'list'], data).stdout}")


def test_without_smtp_mail_is_written_and_parley_mail_prints_it(spawn: Any, tmp_path: Path) -> None:
    """Sign up with an address, follow the printed verification link, ask for a reset, follow the printed reset
    link: signed in with the new password. The links start with the server's own origin."""
    server = spawn()
    data = tmp_path / "data"
    name = unique()
    address = f"{name}@mail.example.org"
    api = Api(server.url)
    assert api.post("/api/users", json={"username": name, "password": "correct horse battery",
                                        "email": address}).status_code == 201
    verify = newest_link(data, "/verify-email", address)
    assert verify.startswith(f"http://127.0.0.1:{server.port}/verify-email?token=")
    token = verify.split("token=")[1]
    assert Api(server.url).post("/api/email/verify", json={"token": token}).json()["user"]["email_verified"]
    assert api.post("/api/password-reset", json={"email": address}).status_code == 202
    reset = newest_link(data, "/reset-password", address)
    r = Api(server.url).post("/api/password-reset/confirm", json={"token": reset.split("token=")[1],
                                                                  "new_password": "my new password"})
    assert r.status_code == 200, r.text
    assert api.get("/api/me").status_code == 401
    assert "no mail 999999" in parley(["mail", "show", "999999"], data).stderr


def test_user_passwd_sets_the_password_and_ends_every_session(spawn: Any, tmp_path: Path, pg_url: str) -> None:
    """`parley user passwd NAME` reads the password from stdin; the old sessions answer 401, the new password
    signs in; an unknown name or a short password is one line and exit 2."""
    server = spawn()
    api = Api(server.url).sign_up()
    name = api.user["username"]  # type: ignore[index]
    done = parley(["user", "passwd", name], tmp_path / "data", stdin="brand new password\n", DATABASE_URL=pg_url)
    assert done.returncode == 0, done.stderr
    assert api.get("/api/me").status_code == 401
    assert Api(server.url).post("/api/session", json={"username": name,
                                                      "password": "brand new password"}).status_code == 200
    for args, stdin in ((["user", "passwd", "nobody-" + unique()], "brand new password\n"),
                        (["user", "passwd", name], "short\n"), (["user", "passwd", name], "\u3000" * 9 + "\n")):
        bad = parley(args, tmp_path / "data", stdin=stdin, DATABASE_URL=pg_url)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
