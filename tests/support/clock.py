"""A clock that moves only when a test moves it (STYLE: time is a parameter)."""

from __future__ import annotations


class Clock:
    """Pass it where the code takes `clock`; set or advance `now` to step time."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
