"""The error family: every failure a client can cause has a stable code and a status."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered as {"error": {"code", "message", "field"?}} with `status`."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 status: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            err["field"] = self.field
        return {"error": err}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class TooLarge(ApiError):
    status, code = 413, "too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class Invalid(ApiError):
    status, code = 422, "invalid"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(message or f"Too many requests; try again in {seconds} s",
                         headers={"Retry-After": str(seconds)})
        self.retry_after = seconds


class Unavailable(ApiError):
    status, code = 503, "unavailable"


# The WebSocket close codes Parley sends itself (RFC 6455 §7.4.1); uvicorn sends 1012 on shutdown.
WS_1008_POLICY_VIOLATION = 1008
WS_1012_SERVICE_RESTART = 1012  # what uvicorn closes sockets with on shutdown; an SSE stream ends with it too
WS_1013_TRY_AGAIN_LATER = 1013
WS_4001_SESSION_ENDED = 4001  # our own: the session the socket was opened with ended (CONTRACT "Guarantees")
