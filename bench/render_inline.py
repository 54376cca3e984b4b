"""Worst case of rendering on the event loop: bodies that server/render.py renders in-line.

    python -m bench.render_inline

Builds the longest body each slow Markdown construct can make while still passing
`renders_inline()` (alone and mixed with plain text, links, headings), plus random bodies of
Markdown punctuation, and prints the slowest render times (best of 3 each, so a scheduling
hiccup does not count). The inline rule is only safe while the worst stays around a millisecond
or two: compare with the round trip to a render worker under load (bench.writes).
"""

from __future__ import annotations

import random
import time

from server.render import INLINE_CHARS, INLINE_MARKS, _render_checked, renders_inline

PATTERNS = ["http://a.b/(", "[", "![", "*a", "_a", "`", "<", "[a](", "**_", "[a]", "|a", "\\", "&amp;", "~~",
            "[[", "](", "<a", "[x]: y\n", "www.a.b/(", "x@y.z ", "a:", "http://a.b/", "> ", "- ", "1. ",
            "www.a.b ", "a.b ", "#"]
FILLS = ["", " lorem", "a", "http://a.b ", "www.a.b ", "a.bc "]
PUNCTUATION = "[]()*_`<>!|\\&~:/.@#-+=h w"


def best_ms(body: str, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        _render_checked(body)
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def longest(pattern: str, fill: str) -> str:
    body = pattern
    while renders_inline(body + pattern):
        body += pattern
    while fill and renders_inline(body + fill):
        body += fill
    return body


def main() -> None:
    rows = [(best_ms(body), f"{p!r} + {f!r}", len(body))
            for p in PATTERNS for f in FILLS for body in [longest(p, f)]]
    rng = random.Random(2)
    for i in range(300):
        body = "".join(rng.choice(PUNCTUATION) for _ in range(INLINE_CHARS))
        while not renders_inline(body):
            body = body[:-8]
        rows.append((best_ms(body), f"random #{i}", len(body)))
    rows.sort(reverse=True)
    print(f"in-line rule: ≤ {INLINE_CHARS} chars and ≤ {INLINE_MARKS} marks; {len(rows)} bodies")
    print("slowest renders (ms, best of 3):")
    for ms, name, n in rows[:8]:
        print(f"  {ms:6.2f}  {name}  ({n} chars)")
    typical = "Thanks, this works! See the docs for details.\n\n- one\n- two"
    print(f"typical reply: {best_ms(typical, 20):.3f} ms")


if __name__ == "__main__":
    main()
