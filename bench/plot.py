"""Figures from the bench's result files (bench/results/*.json) as PNGs, for bench/README.md.

    python -m bench.plot                      # the newest results of each kind → bench/figures/
    python -m bench.plot FILE.json ... --out DIR

Needs matplotlib (`pip install -e '.[bench]'`). Draws what the results hold, and says what it skipped:

* write-latency.png — the write bench's latency by percentile (a tail plot: 50, 90, 99, 99.9 spaced evenly),
  one curve per variant of a `bench.writes --ab` run (before/after), or per run;
* write-timeline.png — the worst latency of the replies sent in each 100 ms of a `--stall-probe` run, with the
  gen-2 collections the probe saw marked under it (the stall and its cause on one time axis);
* growth.png — CPU per reply by thread size (`bench.writes --responses N` runs) and KiB per idle socket and
  connect time by sockets (`bench.idle --sockets 1000,10000,…` runs);
* peers.png — Parley ÷ the reference server for what both were measured on in one run (fan-out µs per frame
  from `bench.fanout --target both`, KiB per idle socket and connect time from `bench.idle --modes off,reference`):
  below 1 is cheaper than the peer.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from .common import RESULTS, ROOT

FIGURES = ROOT / "bench" / "figures"


def load(paths: list[Path]) -> list[dict[str, Any]]:
    out = []
    for p in paths:
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            print(f"skipped {p}: {exc}", file=sys.stderr)
            continue
        data["_path"] = p
        out.append(data)
    return out


def newest(kind_prefix: str) -> list[Path]:
    return sorted(RESULTS.glob(f"{kind_prefix}*.json"), key=lambda p: p.stat().st_mtime)


def _tail_x(q: float) -> float:
    """Percentile → x on a tail axis: 50 → 0.3, 90 → 1, 99 → 2, 99.9 → 3."""
    return -math.log10(max(1e-4, 1 - q / 100))


def _load_note(res: dict[str, Any]) -> str:
    m = res.get("machine", {})
    la = m.get("loadavg") or []
    return f"{m.get('date', '?')}, load {la[0]:.1f}" if la else str(m.get("date", "?"))


def write_latency(results: list[dict[str, Any]], out: Path, plt: Any) -> Path | None:
    curves = []
    for res in results:
        rows = res.get("rows") or []
        shapes = res.get("shapes") or ([{"latency_quantiles_ms": res["latency_quantiles_ms"]}]
                                       if res.get("latency_quantiles_ms") else [])
        for row, shape in zip(rows, shapes):
            q = shape.get("latency_quantiles_ms") or []
            if q:
                label = (f"{row.get('variant') or res['_path'].stem}: {row.get('offered_per_s') or 'closed'}/s, "
                         f"p99 {row.get('p99_ms', 0):.0f} ms, load {row.get('loadavg', '?')}")
                curves.append((label, q, row.get("variant") or ""))
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, q, variant in curves:
        xs = [_tail_x(i / 10) for i in range(len(q)) if i / 10 < 99.95]
        ax.plot(xs, q[:len(xs)], label=label, linestyle="--" if variant.startswith("before") else "-")
    ticks = [50, 90, 99, 99.9]
    ax.set_xticks([_tail_x(t) for t in ticks], [f"p{t:g}" for t in ticks])
    ax.set_xlim(0, _tail_x(99.9))
    ax.set_yscale("log")
    ax.set_ylabel("HTTP latency of a reply (ms, log)")
    ax.set_xlabel("percentile (tail axis)")
    ax.set_title("Write path: latency by percentile (bench.writes)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "write-latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_timeline(results: list[dict[str, Any]], out: Path, plt: Any) -> Path | None:
    panels = []
    for res in results:
        shapes = res.get("shapes") or [res]
        for row, shape in zip(res.get("rows") or [], shapes):
            if shape.get("latency_timeline") and row.get("stalls"):
                panels.append((row, shape["latency_timeline"], row["stalls"].get("gen2_at", [])))
    if not panels:
        return None
    panels = panels[-4:]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.2 * len(panels)), sharex=True, squeeze=False)
    for ax, (row, timeline, gen2) in zip(axes[:, 0], panels):
        ax.plot([t for t, _ in timeline], [v for _, v in timeline], linewidth=0.8)
        for t, ms in gen2:
            ax.axvline(t, color="red", alpha=0.5, linewidth=1)
            ax.annotate(f"gen 2, {ms:.0f} ms CPU", (t, 0.97), xycoords=("data", "axes fraction"), fontsize=6,
                        color="red", rotation=90, va="top", ha="right")
        ax.set_ylabel("worst ms / 100 ms", fontsize=7)
        ax.set_title(f"{row.get('variant') or 'run'}: p99 {row.get('p99_ms', 0):.0f} ms, "
                     f"{len(gen2)} gen-2 collections, load {row.get('loadavg', '?')}", fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("seconds into the run (send time)")
    fig.tight_layout()
    path = out / "write-timeline.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def growth(writes: list[dict[str, Any]], idle: list[dict[str, Any]], out: Path, plt: Any) -> Path | None:
    by_size: dict[int, float] = {}
    for res in writes:
        for row in res.get("rows") or []:
            if row.get("us_cpu_per_reply") and not (row.get("variant") or "").startswith("before"):
                by_size[int(row.get("responses") or 0)] = row["us_cpu_per_reply"]
    sockets: dict[str, dict[int, tuple[float, float]]] = {}
    for res in idle:
        for row in res.get("rows") or []:
            if row.get("kib_per_socket") is not None:
                sockets.setdefault(row["mode"], {})[int(row["sockets"])] = (row["kib_per_socket"], row["connect_s"])
    panels = int(len(by_size) > 1) + int(any(len(v) > 1 for v in sockets.values())) * 2
    if not panels:
        return None
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6), squeeze=False)
    k = 0
    if len(by_size) > 1:
        ax = axes[0, k]
        xs = sorted(by_size)
        ax.plot([max(1, x) for x in xs], [by_size[x] for x in xs], marker="o")
        ax.set_xscale("log")
        ax.set_xlabel("responses already in the thread (log; 0 drawn at 1)")
        ax.set_ylabel("server µs CPU per reply")
        ax.set_title("Write cost by thread size", fontsize=9)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        k += 1
    if any(len(v) > 1 for v in sockets.values()):
        for j, (what, idx) in enumerate((("KiB per idle socket", 0), ("connect + subscribe (s)", 1))):
            ax = axes[0, k + j]
            for mode, pts in sorted(sockets.items()):
                xs = sorted(pts)
                ax.plot(xs, [pts[x][idx] for x in xs], marker="o", label=mode)
            ax.set_xscale("log")
            ax.set_xlabel("sockets (log)")
            ax.set_ylabel(what)
            ax.set_ylim(bottom=0)
            ax.set_title(what + " by sockets", fontsize=9)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "growth.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def peers(fanout: list[dict[str, Any]], idle: list[dict[str, Any]], out: Path, plt: Any) -> Path | None:
    bars: list[tuple[str, float]] = []
    for res in fanout:
        rows = {r.get("target"): r for r in res.get("rows") or []}
        p, r = rows.get("parley"), rows.get("reference")
        if p and r and p.get("us_per_frame") and r.get("us_per_frame"):
            bars.append((f"fan-out CPU/frame\nW={p['watchers']} R={p['rate']}", p["us_per_frame"] / r["us_per_frame"]))
    for res in idle:
        by: dict[int, dict[str, Any]] = {}
        for row in res.get("rows") or []:
            by.setdefault(int(row["sockets"]), {})[row["mode"]] = row
        for n, modes in sorted(by.items()):
            p, r = modes.get("parley compression off"), modes.get("reference")
            if p and r and r.get("kib_per_socket"):
                bars.append((f"RSS/idle socket\n{n:,}", p["kib_per_socket"] / r["kib_per_socket"]))
            if p and r and r.get("connect_s"):
                bars.append((f"connect+subscribe\n{n:,}", p["connect_s"] / r["connect_s"]))
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(bars)), 3.8))
    ax.bar(range(len(bars)), [b[1] for b in bars],
           color=["tab:green" if b[1] <= 1 else "tab:orange" for b in bars])
    for i, (_, v) in enumerate(bars):
        ax.annotate(f"{v:.2f}×", (i, v), ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="black", linewidth=1)
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=7)
    ax.set_ylabel("Parley ÷ reference (same run)")
    ax.set_title("Against the peer: below 1 is cheaper or faster", fontsize=9)
    fig.tight_layout()
    path = out / "peers.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> list[Path]:
    p = argparse.ArgumentParser(prog="python -m bench.plot", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", type=Path, help="result files (default: bench/results/, newest of each kind)")
    p.add_argument("--out", type=Path, default=FIGURES)
    a = p.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("bench.plot needs matplotlib: pip install -e '.[bench]'") from None
    if a.files:
        results = load(a.files)
        kinds: dict[str, list[dict[str, Any]]] = {}
        for r in results:
            kinds.setdefault(str(r.get("workload", "")), []).append(r)

        def of(prefix: str) -> list[dict[str, Any]]:
            return [r for k, rs in kinds.items() if k.startswith(prefix) for r in rs]
        writes = of("w")
        idle, fanout = of("idle"), of("fanout")
    else:
        writes = load([f for f in newest("w") if json.loads(f.read_text()).get("rows", [{}])[0].get("committed")])
        idle = load(newest("idle")[-3:])
        fanout = load(newest("fanout")[-3:])
    a.out.mkdir(parents=True, exist_ok=True)
    drawn = []
    ab = [r for r in writes if r.get("shapes")]  # before/after runs first: what the latency figures are for
    probed = [r for r in writes if any(row.get("stalls") for row in r.get("rows") or [])]
    for name, fig in (("write-latency", lambda: write_latency((ab or writes)[-2:], a.out, plt)),
                      ("write-timeline", lambda: write_timeline(probed[-1:], a.out, plt)),
                      ("growth", lambda: growth(writes, idle, a.out, plt)),
                      ("peers", lambda: peers(fanout, idle, a.out, plt))):
        path = fig()
        if path is None:
            print(f"{name}: no results for it; skipped")
        else:
            drawn.append(path)
            print(f"{name}: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return drawn


if __name__ == "__main__":
    main()
