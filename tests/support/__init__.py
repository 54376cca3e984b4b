"""What the test suite and bench/ share: one copy each, imported from its module.

* ports.py      a spare loopback port
* databases.py  throw-away databases, one-off queries, a moderator, the deployment's Redis namespace
* processes.py  real `parley serve` and `redis-server` processes
* api.py        an HTTP client per user, unique names, a thread
* ws.py         a /ws client that records frames

Tests import it as `support` (pytest's pythonpath has tests/); bench/ as `tests.support`. Folder-specific
helpers (tests/api/api_support.py, tests/faults/fault_support.py, …) build on it and re-export nothing.
"""
