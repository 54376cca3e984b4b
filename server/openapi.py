"""The OpenAPI 3 description of the HTTP API (GET /api/openapi.json). Filled in by docs/api work."""

from __future__ import annotations

from typing import Any


def document() -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "Parley", "version": "0.1.0"}, "paths": {}}
