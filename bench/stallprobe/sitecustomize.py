"""A stall probe for a server process: put this folder on PYTHONPATH and set PARLEY_STALL_PROBE=FILE.

It appends one JSON line per event to FILE (it never touches the server's code):
* {"gc": 2, "at": t, "ms": wall, "cpu_ms": thread CPU, "collected": n, "objects": n, "frozen": n} for
  every collection of generation 2 (gc.callbacks), with the tracked and frozen object counts after it;
  generations 0/1 only when they take more than 2 ms of CPU;
* {"lag": ms, "cpu_ms": ms, "at": t, "gc_ms": ms} when a 10 ms ticker on the event loop (call_later,
  started from the first collection seen on each running loop) ran more than 20 ms late. cpu_ms is the
  loop thread's own CPU time over that window: close to `lag`, the process itself was busy (a long
  callback, a collection); far below it, the machine did not run us (the load of other processes).
  gc_ms is the CPU the collections took within the window.
Times are time.time() so they line up with the bench's own clock. Used by `bench.writes --stall-probe`.
"""

from __future__ import annotations

import os

_path = os.environ.get("PARLEY_STALL_PROBE")
if _path:
    import asyncio
    import gc
    import json
    import threading
    import time

    _out = open(_path, "a", buffering=1)
    _state: dict = {"start": 0.0, "cpu": 0.0, "loop": None, "gc_cpu": 0.0}

    def _emit(rec: dict) -> None:
        _out.write(json.dumps(rec) + "\n")

    def _tick(loop: asyncio.AbstractEventLoop, expected: float, cpu0: float, gc0: float) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        late = (now - expected) * 1000
        if late > 20:
            _emit({"lag": round(late, 1), "cpu_ms": round((cpu - cpu0) * 1000 - 10, 1), "at": time.time(),
                   "gc_ms": round((_state["gc_cpu"] - gc0) * 1000, 1)})
        loop.call_later(0.01, _tick, loop, now + 0.01, cpu, _state["gc_cpu"])

    def _on_gc(phase: str, info: dict) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if phase == "start":
            _state["start"], _state["cpu"] = time.perf_counter(), time.thread_time()
            loop = asyncio._get_running_loop()
            if loop is not None and loop is not _state["loop"]:  # start-up runs loops of its own first
                _state["loop"] = loop
                loop.call_soon(_tick, loop, time.perf_counter(), time.thread_time(), _state["gc_cpu"])
            return
        cpu = time.thread_time() - _state["cpu"]
        _state["gc_cpu"] += cpu
        ms, gen = (time.perf_counter() - _state["start"]) * 1000, info.get("generation", -1)
        if gen == 2:
            _emit({"gc": 2, "at": time.time(), "ms": round(ms, 2), "cpu_ms": round(cpu * 1000, 2),
                   "collected": info.get("collected"), "objects": len(gc.get_objects()),
                   "frozen": gc.get_freeze_count()})
        elif cpu > 0.002:
            _emit({"gc": gen, "at": time.time(), "ms": round(ms, 2), "cpu_ms": round(cpu * 1000, 2)})

    gc.callbacks.append(_on_gc)
