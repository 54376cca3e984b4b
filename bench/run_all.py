"""The standard set (issue "Performance" targets 1-7 and the issue-3 figures), in under 10 minutes.

    python -m bench.run_all              # once each (~9 min on 2 cores)
    python -m bench.run_all --repeat 3   # fan-out workloads 3×, medians reported (~20 min)
    python -m bench.run_all --only 1,2   # a subset

Prints a targets-vs-measured table and writes bench/results/summary-*.json and summary-*.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from . import common, fanout, idle, storm, writes


def med(values: list[Any]) -> Any:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fan(label: str, argv: list[str], repeat: int) -> list[dict[str, Any]]:
    runs = []
    for i in range(repeat):
        print(f"\n== {label} (run {i + 1}/{repeat}): python -m bench.fanout {' '.join(argv)}")
        runs.append(fanout.main(argv))
    return runs


def row(runs: list[dict[str, Any]], target: str, key: str) -> Any:
    return med([next((r[key] for r in run["rows"] if r["target"] == target), None) for run in runs])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--only", default="1,2,3,4,5,6,7,i3")
    p.add_argument("--duration", type=float, default=15)
    a = p.parse_args(argv)
    only = set(a.only.split(","))
    D = str(a.duration)
    out: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    t_start = time.time()

    def add(n: str, target: str, measured: str, ok: bool | None, ref: str = "") -> None:
        out.append({"n": n, "target": target, "measured": measured, "met": {True: "yes", False: "NO"}.get(ok, "?"),
                    "reference": ref})
        print(f"  [{n}] {target}: {measured} → {out[-1]['met']}")

    if "1" in only:
        runs = raw["1"] = fan("1 CPU per delivery", ["-W", "1000", "-R", "20", "-D", D, "--target", "both",
                                                     "--poster", "separate", "--name", "w1-cpu"], a.repeat)
        pu, ru = row(runs, "parley", "us_per_frame"), row(runs, "reference", "us_per_frame")
        ratio = pu / ru if pu and ru else None
        add("1", "µs CPU/frame ≤ 1.15× reference", f"parley {pu:.1f} µs, reference {ru:.1f} µs = {ratio:.2f}×",
            ratio is not None and ratio <= 1.15,
            f"reference p99 {row(runs, 'reference', 'p99_ms'):.0f} ms, lost {row(runs, 'reference', 'lost')}")
    if "2" in only:
        runs = raw["2"] = fan("2 W=1000 R=100", ["-W", "1000", "-R", "100", "-D", D, "--name", "w2"], a.repeat)
        p99, lost = row(runs, "parley", "p99_ms"), row(runs, "parley", "lost")
        add("2", "W=1000 R=100: p99 ≤ 50 ms, nothing lost",
            f"p99 {p99:,.0f} ms, delivered {row(runs, 'parley', 'delivered_per_s'):,.0f}/s, "
            f"µs/frame {row(runs, 'parley', 'us_per_frame'):.1f}, undelivered at end {lost}",
            p99 <= 50 and lost == 0)
    if "3" in only:
        runs = raw["3"] = fan("3 W=10000 R=5", ["-W", "10000", "-R", "5", "-D", D, "--probe", "--name", "w3"],
                              a.repeat)
        p99, lost = row(runs, "parley", "p99_ms"), row(runs, "parley", "lost")
        gp99 = med([r["probe_get"]["p99_ms"] for r in runs if r.get("probe_get")])
        add("3", "W=10k R=5: p99 ≤ 250 ms, nothing lost; GET p99 meanwhile",
            f"p99 {p99:,.0f} ms, undelivered {lost}, GET other thread p99 {gp99:,.0f} ms", p99 <= 250 and lost == 0)
    if "i3" in only:
        runs = raw["i3a"] = fan("issue 3: W=1000 R=100 (see 2)" if "2" in only else "issue 3: W=1000 R=100",
                                ["-W", "1000", "-R", "100", "-D", D, "--name", "i3-1000"], 1) \
            if "2" not in only else raw["2"]
        runs5 = raw["i3b"] = fan("issue 3: W=5000 R=50", ["-W", "5000", "-R", "50", "-D", D, "--name", "i3-5000"],
                                 a.repeat)
        for label, rr in (("W=1000 R=100", runs), ("W=5000 R=50", runs5)):
            add("i3", f"issue-3 figure {label}",
                f"p50 {row(rr, 'parley', 'p50_ms'):,.0f} / p99 {row(rr, 'parley', 'p99_ms'):,.0f} / max "
                f"{row(rr, 'parley', 'max_ms'):,.0f} ms, {row(rr, 'parley', 'delivered_per_s'):,.0f} delivered/s, "
                f"undelivered {row(rr, 'parley', 'lost')}, CPU {row(rr, 'parley', 'cpu_s'):.1f} s, "
                f"peak RSS {row(rr, 'parley', 'peak_rss_mib'):.0f} MiB", None)
    if "4" in only:
        print("\n== 4 idle memory: python -m bench.idle --sockets 10000")
        r = raw["4"] = idle.main(["--sockets", "10000"])
        by = {x["mode"]: x["kib_per_socket"] for x in r["rows"]}
        off = by.get("parley compression off")
        add("4", "idle ≤ 20 KiB/socket (compression off; on: figure)",
            f"off {off:.1f} KiB, on {by.get('parley compression on', 0):.1f} KiB", off is not None and off <= 20,
            f"reference {by.get('reference', 0):.1f} KiB")
    if "5" in only:
        print("\n== 5 connect storm + reconnect: python -m bench.storm --sockets 10000 --threads 10")
        r = raw["5"] = storm.main(["--sockets", "10000", "--threads", "10"])
        add("5", "10k connect+subscribe ≤ 10 s; reconnect with since loses nothing; queries/thread",
            f"storm {r['storm_s']:.1f} s; reconnect {r['reconnect_s']:.1f} s, lost {r['lost']}, dup {r['dups']}, "
            f"replay queries {r['replay_queries_metric']:.0f} for 10 threads "
            f"({r['statements_per_reconnect']:.3f} statements/reconnect)",
            r["storm_s"] <= 10 and r["lost"] == 0 and r["dups"] == 0 and r["drained"])
    if "6" in only:
        print("\n== 6 write path: python -m bench.writes --rate 0 / --rate 1000")
        closed = raw["6c"] = writes.main(["--rate", "0", "--concurrency", "64", "--duration", "8", "--name",
                                          "w6-closed"])
        opened = raw["6o"] = writes.main(["--rate", "1000", "--concurrency", "256", "--duration", "8", "--name",
                                          "w6-open"])
        c, o = closed["rows"][0], opened["rows"][0]
        add("6", "≥ 1000 replies/s committed, HTTP p99 ≤ 50 ms",
            f"closed loop (64 conns) {c['committed_per_s']:.0f}/s p99 {c['p99_ms']:,.0f} ms; open loop 1000/s → "
            f"{o['committed_per_s']:.0f}/s p99 {o['p99_ms']:,.0f} ms; {c['us_cpu_per_reply']:,.0f} µs server CPU/reply",
            o["committed_per_s"] >= 950 and o["p99_ms"] <= 50)
    if "7" in only:
        common_args = ["-W", "1000", "-R", "50", "-D", str(max(20.0, a.duration)), "--body", "8000"]
        base = raw["7b"] = fan("7 baseline", common_args + ["--name", "w7-base"], a.repeat)
        slow = raw["7s"] = fan("7 with 1% slow", common_args + ["--slow-pct", "1", "--name", "w7-slow"], a.repeat)
        b99, s99 = row(base, "parley", "p99_ms"), row(slow, "parley", "p99_ms")
        closed = med([r["slow_consumer_closes_metric"] for r in slow])
        add("7", "1% slow: others' p99 moves ≤ 10%, RSS bounded",
            f"p99 {b99:,.1f} → {s99:,.1f} ms ({(s99 / b99 - 1) * 100:+.0f}%), peak RSS "
            f"{row(base, 'parley', 'peak_rss_mib'):.0f} → {row(slow, 'parley', 'peak_rss_mib'):.0f} MiB, "
            f"1013 closes {closed}", s99 <= b99 * 1.10)

    m = common.machine()
    lines = [f"Machine: {m['nproc']} CPU ({m['cpu']}), {m['mem_gib']} GiB, Python {m['python']}, {m['date']}, "
             f"load average at end {m['loadavg']}; {time.time() - t_start:.0f} s; median of {a.repeat} run(s).", "",
             "| # | target | measured | met | reference server, same run |", "|---|---|---|---|---|"]
    lines += [f"| {r['n']} | {r['target']} | {r['measured']} | {r['met']} | {r['reference']} |" for r in out]
    md = "\n".join(lines)
    print("\n" + md)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    (common.RESULTS / f"summary-{stamp}.md").write_text(md + "\n")
    (common.RESULTS / f"summary-{stamp}.json").write_text(json.dumps({"machine": m, "rows": out, "raw": raw},
                                                                     indent=2, default=str))
    print(f"→ bench/results/summary-{stamp}.md")
    return {"rows": out}


if __name__ == "__main__":
    main()
