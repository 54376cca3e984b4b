"""Layer rules of the server package, checked on its source (issue 26): SQL lives in store/ only, the app's
state is typed and built once, no module shadows the standard library."""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from pathlib import Path
from typing import Any

from server.state import AppState

SERVER = Path(__file__).resolve().parents[2] / "server"
SQL = re.compile(r"\b(SELECT|INSERT INTO|DELETE FROM|UPDATE [a-z_]+ SET)\b")
NOT_YET: set[str] = set()  # modules not moved yet (each a debt, not a precedent): none left


def test_sql_only_in_store():
    """No module outside store/ (and the migrations) holds a SQL statement; live/ asks store/ for everything."""
    offenders = []
    for path in SERVER.rglob("*.py"):
        name = str(path.relative_to(SERVER))
        if name.startswith(("store/", "migrations/")) or name in NOT_YET:
            continue
        if SQL.search(path.read_text()):
            offenders.append(name)
    assert offenders == []


def test_app_state_is_typed_and_complete():
    """AppState has no Any field and none that is None until filled in later: the lifespan builds it once."""
    hints = typing.get_type_hints(AppState)
    loose = [name for name, hint in hints.items()
             if hint is Any or type(None) in typing.get_args(hint) or Any in typing.get_args(hint)]
    assert loose == []
    assert all(f.default is not None for f in dataclasses.fields(AppState))


def test_no_module_is_named_like_the_standard_library():
    """No module of the server package shadows a standard library module (live/typing.py once did)."""
    shadows = [str(p.relative_to(SERVER)) for p in SERVER.rglob("*.py")
               if p.stem != "__init__" and p.stem in sys.stdlib_module_names]
    assert shadows == []


CHANNEL = re.compile(r"""f?["'](?:thread|user|users|feed|presence):(?! )""")  # a name, not a log line "presence: …"


def test_channel_names_are_spelled_only_in_channels():
    """Only live/channels.py spells a broker channel name ("thread:…", "user:…", "feed:…", "presence:…")."""
    offenders = [str(p.relative_to(SERVER)) for p in SERVER.rglob("*.py")
                 if p.name != "channels.py" and CHANNEL.search(p.read_text())]
    assert offenders == []


def test_live_does_not_import_the_http_handlers():
    """live/ is below api/: no live module imports server.api (the field rules it shares are server/fields.py)."""
    imports_api = re.compile(r"^\s*(?:from \.\.api\b|from server\.api\b|import server\.api\b)", re.M)
    offenders = [str(p.relative_to(SERVER)) for p in (SERVER / "live").rglob("*.py")
                 if imports_api.search(p.read_text())]
    assert offenders == []
