"""Layer rules of the server package, checked on its source (issue 26): SQL lives in store/ only."""

from __future__ import annotations

import re
from pathlib import Path

SERVER = Path(__file__).resolve().parents[2] / "server"
SQL = re.compile(r"\b(SELECT|INSERT INTO|DELETE FROM|UPDATE [a-z_]+ SET)\b")
# Not moved yet (each a debt, not a precedent): the pruning job's batched deletes and its advisory lock,
# the mention search's user query.
NOT_YET = {"housekeeping.py", "api/mentions.py"}


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
