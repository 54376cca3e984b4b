"""Markdown → safe HTML, done once on write, off the event loop, within a size and a time budget.

markdown-it-py renders CommonMark with raw HTML disabled (it is escaped, not
passed through) and linkify on; nh3 (the Ammonia sanitizer) then enforces an
allow-list, so even a renderer bug cannot let a script or handler through.

Two limits make rendering safe against hostile bodies (docs/security.md):

* Size: the HTML is at most MAX_HTML bytes (contract: 256 KiB), checked on the
  result, so whatever construct makes it grow (reference links, autolinks,
  nested emphasis, entities, lists, tables) is refused with 422, field `body`.
* Time: Renderer runs render() in worker processes and gives each body a time
  budget; past it the worker is killed (a thread cannot be stopped) and
  replaced, and the body is refused with 422. The event loop renders only bodies
  short and plain enough that their worst case is a few ms (renders_inline()).

Fairness: bodies waiting for a worker queue per user, and a free worker takes
the oldest body of the user whose bodies took the least render time lately
(FairQueue). Someone flooding slow bodies then delays another user's post by
at most about the jobs already running, not by their whole queue.
"""

from __future__ import annotations

import asyncio
import html as html_lib
import logging
import multiprocessing
import os
import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Hashable
from functools import cache
from typing import TYPE_CHECKING, Any

import nh3

from .errors import Invalid, Unavailable

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

log = logging.getLogger(__name__)

MAX_HTML = 256 * 1024


@cache
def parser() -> MarkdownIt:
    """The Markdown parser, made at the first render: every process imports this module (fields.py reads its
    character rules) but not every one renders, and importing markdown-it cost every start ~25 ms of CPU. The
    render workers' fork server preloads markdown_it (Renderer), so a new worker does not import it again."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False}).enable(
        ["linkify", "strikethrough", "table"]
    )


TAGS = {
    "a", "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "img",
}
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height", "loading"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
    "code": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "nofollow ugc noopener"

# Characters that show as nothing: controls, format characters (zero-width space, joiners, word joiner,
# BOM…), separators, combining marks on their own, private use/unassigned, and the blank letters that
# Unicode classifies as visible (Braille blank, Hangul fillers, halfwidth filler).
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})
BLANK_LETTERS = {"\u2800", "\u3164", "\u115f", "\u1160", "\uffa0", "\u17b4", "\u17b5"}


def is_invisible(text: str) -> bool:
    """True when every character of `text` shows as nothing (the empty string included)."""
    return all(ch.isspace() or ch in BLANK_LETTERS or unicodedata.category(ch) in INVISIBLE_CATEGORIES
               for ch in text)


# Names (display names, category names) are labels shown beside other text: none of them may hold a character
# that changes how the text around it reads, or hides in it. That is every format character (Cf: the bidi
# embeddings, overrides and isolates U+202A–U+202E and U+2066–U+2069, LRM/RLM/ALM, zero-width space, joiner and
# non-joiner, word joiner, soft hyphen, BOM, tags…), every control (Cc: newlines, tabs, escapes), line and
# paragraph separators, lone surrogates and the blank letters. A name needing a joiner (some Persian and Indic
# spellings, emoji sequences) is written without it: a name is a label, and @username is shown beside it.
NAME_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Titles are free text, where right-to-left marks and joiners have their place; only the explicit direction
# controls, which reorder whatever follows them (embeddings, overrides, isolates and their terminators), are
# refused. The page also isolates every title and name (<bdi>, dir=auto).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def refused_in_name(ch: str) -> bool:
    return ch in BLANK_LETTERS or unicodedata.category(ch) in NAME_REFUSED_CATEGORIES


def refused_in_title(ch: str) -> bool:
    return ch in BIDI_CONTROLS


def first_refused(text: str, refused: Callable[[str], bool]) -> str | None:
    """The first character of `text` that `refused` refuses, or None."""
    return next((ch for ch in text if refused(ch)), None)


_TAG = re.compile(r"<[^>]*>")


def shows_something(html: str) -> bool:
    """Whether rendered HTML displays anything: an image, a rule, or some visible text."""
    if "<img" in html or "<hr" in html:
        return True
    return not is_invisible(html_lib.unescape(_TAG.sub("", html)))


def sanitize(html: str) -> str:
    """Keep only the allow-listed tags, attributes and URL schemes."""
    return nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    )


# Pictures (CONTRACT "Pictures"): after sanitizing, an image of one of our uploads (a relative /uploads/ URL whose
# file we hold) gets its width, height and loading="lazy" (no layout shift); any other image becomes a link to it,
# so a reader's browser never loads a picture from elsewhere (no tracking pixels). The sanitizer's output has
# every attribute as name="value" with `"` escaped, which is what these patterns read.
UPLOAD_SRC = re.compile(r"/uploads/([0-9a-f]{64})\.(?:png|jpg|gif|webp)")
_IMG_TAG = re.compile(r'<img((?:\s+[a-z-]+(?:="[^"]*")?)*)\s*/?>')
_IMG_ATTR = re.compile(r'([a-z-]+)="([^"]*)"')
_IMG_OR_LINK = re.compile(r'(?P<a></?a\b)|<img(?P<attrs>(?:\s+[a-z-]+(?:="[^"]*")?)*)\s*/?>')


def upload_shas(html: str) -> list[str]:
    """The SHA-256 of each of our uploads an image of `html` shows."""
    if "<img" not in html:
        return []
    return sorted({m.group(1) for tag in _IMG_TAG.finditer(html)
                   for name, value in _IMG_ATTR.findall(tag.group(1)) if name == "src"
                   for m in [UPLOAD_SRC.fullmatch(html_lib.unescape(value))] if m})


def place_images(html: str, sizes: dict[str, tuple[int, int]]) -> str:
    """Our uploads' images with their size and lazy loading; every other image as a link (or its alt text)."""
    if "<img" not in html:
        return html

    in_link = False  # an image inside a link ([![x](img)](url)) becomes text: links do not nest

    def one(tag: re.Match[str]) -> str:
        nonlocal in_link
        if tag.group("a") is not None:
            in_link = not tag.group("a").startswith("</")
            return tag.group(0)
        attrs = dict(_IMG_ATTR.findall(tag.group("attrs")))
        src, alt, title = attrs.get("src", ""), attrs.get("alt", ""), attrs.get("title")
        m = UPLOAD_SRC.fullmatch(html_lib.unescape(src))
        if m and m.group(1) in sizes:
            w, h = sizes[m.group(1)]
            extra = f' title="{title}"' if title is not None else ""
            return f'<img src="{src}" alt="{alt}"{extra} width="{w}" height="{h}" loading="lazy">'
        text = html_lib.escape(html_lib.unescape(alt).strip() or "image", quote=False)
        if not src or in_link:  # an address the sanitizer dropped (data:, javascript:), or inside a link
            return text
        return f'<a href="{src}" rel="{LINK_REL}" title="Image: {src}">{text}</a>'

    return _IMG_OR_LINK.sub(one, html)


def _too_large() -> Invalid:
    return Invalid(f"body renders to more than {MAX_HTML // 1024} KiB of HTML", field="body")


def _blank() -> Invalid:
    return Invalid("body shows nothing: it holds only invisible characters", field="body")


def _render_checked(markdown: str) -> tuple[str, str]:
    """("ok", html) or (code, "") with code too_large / blank. Runs in a worker (or in-line)."""
    raw = parser().render(markdown)
    # The sanitizer never makes HTML much larger (it only escapes and adds rel), so an oversized
    # rendering is refused before spending time on it.
    if len(raw) > 2 * MAX_HTML:
        return "too_large", ""
    out = sanitize(raw)
    if len(out.encode()) > MAX_HTML:
        return "too_large", ""
    if not shows_something(out):
        return "blank", ""
    return "ok", out


def render(markdown: str) -> str:
    """Render a post body (CommonMark + linkify) to sanitized HTML, in-line (CLI, demo, tests).

    Raises Invalid (field body) when the HTML would pass MAX_HTML or shows nothing."""
    code, out = _render_checked(markdown)
    if code == "too_large":
        raise _too_large()
    if code == "blank":
        raise _blank()
    return out


def _worker_main(conn: Any) -> None:
    """A render worker: answer each body with _render_checked() until told to stop (None)."""
    try:
        os.nice(10)  # a flood of hostile bodies must not take the CPU from the event loop
    except OSError:
        pass
    conn.send(("ready", ""))
    while True:
        try:
            body = conn.recv()
        except (EOFError, OSError):
            return
        if body is None:
            return
        try:
            conn.send(_render_checked(body))
        except Exception as exc:  # a renderer bug: report it, keep serving
            conn.send(("error", repr(exc)))


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), name="parley-render", daemon=True)
        self.proc.start()
        child.close()

    def wait_ready(self, timeout: float) -> None:
        if not self.conn.poll(timeout):
            self.kill()
            raise RuntimeError("render worker did not start")
        self.conn.recv()

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.join(2)
        except Exception:
            pass
        self.conn.close()


# Bodies cheap enough to render on the event loop (docs/security.md "Rendering"). Markdown's slow cases
# grow with the number of delimiters and brackets, not with plain text, so a short body with few of them
# has a small worst case (≤ 3 ms measured by `python -m bench.render_inline`), while a round trip to a
# worker process costs a reply several ms of scheduling delay on a busy machine (bench/README.md).
INLINE_CHARS = 1024
INLINE_MARKS = 32
_NOT_MARKS = str.maketrans("", "", "[]()*_`<>!|\\&~:@")


def renders_inline(markdown: str) -> bool:
    """Whether `markdown` is short and plain enough that rendering it in-line is always fast."""
    return len(markdown) <= INLINE_CHARS and len(markdown) - len(markdown.translate(_NOT_MARKS)) <= INLINE_MARKS


class FairQueue:
    """Jobs waiting for a render worker: one FIFO per user, served by least recent render time.

    Each user (any hashable key) has a *usage*: the seconds of render time their bodies took, decayed
    with a half-life of `half_life` seconds (so it measures the last minute or two, and a user who
    stops flooding is back to nothing soon). pop() takes the oldest job of the waiting user with the
    least usage, the earliest-queued head first among equals. Consequences (docs/security.md):

    * A user whose bodies are cheap (ordinary posts take a few ms) has almost no usage, so their body
      is the next one a worker takes: it waits for the jobs already running, about one per worker,
      however many slow bodies other users have queued and however many accounts they use.
    * Users who all flood are served in turn by the time they used, not by how many bodies they queued.
    * Nothing starves: usage decays, and a worker never idles while a job waits.

    A worker handed a job is charged `start()` at once (the user's last measured cost, or the one of
    `first_guess` for a user with none), then corrected by `finish()` with the measured time, so two
    workers freed together do not both go to the same user. `clock` is time.monotonic (a parameter for
    the tests)."""

    def __init__(self, half_life: float = 60.0, first_guess: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.half_life = half_life
        self.first_guess = first_guess
        self.clock = clock
        self.queues: dict[Hashable, deque[tuple[int, Any]]] = {}
        self.used: dict[Hashable, tuple[float, float, float]] = {}  # key → (usage, at, last cost)
        self.count = 0
        self._order = 0

    def __len__(self) -> int:
        return self.count

    def usage(self, key: Hashable) -> float:
        """The user's decayed render seconds, now."""
        value, at, _ = self.used.get(key, (0.0, 0.0, 0.0))
        return value * 0.5 ** ((self.clock() - at) / self.half_life) if value else 0.0

    def push(self, key: Hashable, job: Any) -> None:
        self._order += 1
        self.queues.setdefault(key, deque()).append((self._order, job))
        self.count += 1

    def remove(self, key: Hashable, job: Any) -> bool:
        """Take a job out before it is served (its request gave up); False if it is not waiting."""
        q = self.queues.get(key)
        if q is None:
            return False
        for item in q:
            if item[1] is job:
                q.remove(item)
                self.count -= 1
                if not q:
                    del self.queues[key]
                return True
        return False

    def pop(self) -> tuple[Hashable, Any] | None:
        """The next job (and its user) by the rule above, or None when nothing waits."""
        if not self.queues:
            return None
        key = min(self.queues, key=lambda k: (self.usage(k), self.queues[k][0][0]))
        q = self.queues[key]
        _, job = q.popleft()
        self.count -= 1
        if not q:
            del self.queues[key]
        return key, job

    def start(self, key: Hashable) -> float:
        """Charge the user for a job a worker takes now; returns the amount, for finish()."""
        _, _, last = self.used.get(key, (0.0, 0.0, self.first_guess))
        self._add(key, last, last)
        return last

    def finish(self, key: Hashable, charged: float, seconds: float) -> None:
        """The job took `seconds`: replace what start() charged by that."""
        self._add(key, seconds - charged, seconds)

    def _add(self, key: Hashable, seconds: float, last: float) -> None:
        now = self.clock()
        self.used[key] = (max(0.0, self.usage(key) + seconds), now, last)
        if len(self.used) > 4 * len(self.queues) + 1000:
            self._forget(now)

    def _forget(self, now: float) -> None:
        """Drop users whose usage has decayed to nothing and who wait for nothing (bounded memory)."""
        for k in [k for k in self.used if k not in self.queues and self.usage(k) < 1e-3]:
            del self.used[k]


class Renderer:
    """A small pool of render worker processes with a time budget per body, shared fairly between users.

    render() waits for a worker (at most `wait` seconds, else 503) in its user's queue (FairQueue), hands
    it the body and waits at most `budget` seconds for the answer, the loop staying free. A worker past
    its budget is killed and replaced; the body is refused with 422. Size it to the cores the server may
    spend on rendering (default 2): a flood of slow bodies then queues here instead of stalling requests,
    and queues behind its own user's bodies rather than in front of everyone else's.
    """

    def __init__(self, workers: int = 2, budget: float = 1.0, wait: float | None = None,
                 on_waiting: Callable[[int], None] | None = None) -> None:
        self.size = workers
        self.budget = budget
        # A body may hold a worker for a whole budget, so a wait shorter than a few budgets would answer 503
        # while the queue is still moving: by default wait three budgets, and never less than 10 s.
        self.wait = wait if wait is not None else max(10.0, 3 * budget)
        # Never fork the server process itself (it runs an event loop and threads): workers come from a
        # fork server that has imported the renderer once, so replacing a killed worker is cheap.
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload(["server.render", "markdown_it", "linkify_it"])
        self.idle: list[_Worker] = []
        self.queue = FairQueue()
        self.on_waiting = on_waiting  # told the number of bodies waiting whenever it changes (a metric)
        self.all: set[_Worker] = set()
        self.closed = False

    async def start(self) -> None:
        workers = await asyncio.gather(*(asyncio.to_thread(self._spawn) for _ in range(self.size)))
        for w in workers:
            self._release(w)

    def _waiting_changed(self) -> None:
        if self.on_waiting is not None:
            self.on_waiting(len(self.queue))

    def _release(self, w: _Worker) -> None:
        """A worker is free: to the next waiting job (FairQueue's choice), else idle."""
        while (nxt := self.queue.pop()) is not None:
            _, job = nxt
            if not job.done():  # a job whose request gave up is skipped
                job.set_result(w)
                self._waiting_changed()
                return
        self.idle.append(w)
        self._waiting_changed()

    async def _acquire(self, key: Hashable) -> _Worker:
        """A worker for `key`'s job: an idle one at once if nobody waits, else in turn; 503 after `wait` s."""
        if self.idle and not len(self.queue):
            return self.idle.pop()
        job: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
        self.queue.push(key, job)
        self._waiting_changed()
        try:
            await asyncio.wait({job}, timeout=self.wait)
        except BaseException:  # cancelled while waiting: a worker handed over meanwhile goes on
            self._give_up(key, job)
            raise
        if not job.done():
            self._give_up(key, job)
            raise Unavailable("The server is busy rendering; try again shortly")
        return job.result()

    def _give_up(self, key: Hashable, job: asyncio.Future[_Worker]) -> None:
        if job.done() and not job.cancelled():
            self._release(job.result())
            return
        self.queue.remove(key, job)
        job.cancel()
        self._waiting_changed()

    def _spawn(self) -> _Worker:
        w = _Worker(self.ctx)
        w.wait_ready(60)
        self.all.add(w)
        return w

    async def close(self) -> None:
        self.closed = True
        for w in list(self.all):
            try:
                w.conn.send(None)
            except Exception:
                pass
            await asyncio.to_thread(w.proc.join, 1)
            w.kill()
        self.all.clear()

    async def _replace(self, dead: _Worker) -> None:
        self.all.discard(dead)
        await asyncio.to_thread(dead.kill)
        if self.closed:
            return
        try:
            self._release(await asyncio.to_thread(self._spawn))
        except Exception as exc:
            log.error("could not replace a render worker: %s", exc)

    async def _call(self, w: _Worker, body: str) -> tuple[str, str] | None:
        """Hand `body` to an idle worker and wait for its answer on the event loop (None: over budget).

        The pipe is watched with add_reader rather than polled from a thread: a thread that wakes up
        must win the GIL back from a busy loop (up to the 5 ms switch interval, twice per body), which
        under load made rendering the slowest step of a reply."""
        loop = asyncio.get_running_loop()
        answered = loop.create_future()
        fd = w.conn.fileno()
        # An idle worker is blocked in recv(), so even a body larger than the pipe's buffer is taken as
        # fast as it is written.
        w.conn.send(body)

        def wake() -> None:
            if not answered.done():
                answered.set_result(None)
        loop.add_reader(fd, wake)
        try:
            await asyncio.wait_for(answered, self.budget)
        except TimeoutError:
            return None
        finally:
            loop.remove_reader(fd)
            # uvloop leaves a watched fd non-blocking; the reads below (and the next send) need it blocking.
            os.set_blocking(fd, True)
        # Readable: the answer, which the worker is writing in one go (or EOF if it died: EOFError).
        return w.conn.recv()  # type: ignore[no-any-return]

    async def render(self, markdown: str, key: Hashable = None) -> str:
        """Sanitized HTML of `markdown`; Invalid (field body) if too large, blank or over the time budget.

        `key` says whose body it is (the user id): bodies that need a worker queue per key (FairQueue)."""
        if renders_inline(markdown):
            return render(markdown)
        w = await self._acquire(key)
        charged = self.queue.start(key)
        started = time.perf_counter()
        try:
            result = await self._call(w, markdown)
        except (OSError, EOFError) as exc:  # the worker died under us
            log.warning("render worker failed (%s); replacing it", exc)
            asyncio.get_running_loop().create_task(self._replace(w))
            raise Unavailable("Rendering failed; try again") from None
        except BaseException:  # cancelled mid-answer: the worker's state is unknown, so it is not reused
            asyncio.get_running_loop().create_task(self._replace(w))
            raise
        finally:
            self.queue.finish(key, charged, min(time.perf_counter() - started, self.budget))
        if result is None:
            log.warning("render over its %.2fs budget (%d chars); worker replaced", self.budget, len(markdown))
            asyncio.get_running_loop().create_task(self._replace(w))
            raise Invalid(f"body takes too long to render (over {self.budget:g} s); simplify its Markdown",
                          field="body")
        self._release(w)
        code, out = result
        if code == "ok":
            log.debug("rendered %d chars in %.1f ms", len(markdown), (time.perf_counter() - started) * 1000)
            return out
        if code == "too_large":
            raise _too_large()
        if code == "blank":
            raise _blank()
        log.error("bug: render failed: %s", out)
        raise Invalid("body could not be rendered", field="body")
