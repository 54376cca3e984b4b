"""Uploads under load (issue 28): N concurrent uploads of phone photos (default 20 of ~4 MB) against one
`parley serve`, while one client asks GET /healthz every 10 ms.

    python -m bench.uploads                       # 20 uploaders × 3 photos of ~4 MB, 2 image workers
    python -m bench.uploads --uploaders 4 --rounds 1 --megapixels 2   # a quick look

Reports uploads/s, the server's CPU per upload (the server process and its children: the image and render
workers), the peak RSS of that process tree, and /healthz latency (p50, p99, max: the event loop's longest
stall shows as the max) with no uploads first and then under the upload load. Each photo is distinct (its
own noise), so no upload is a dedupe hit. Results go to bench/results/uploads-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import threading
import time
from typing import Any

import httpx
import psutil
from PIL import Image

from . import common


def photo(seed: int, megapixels: float, quality: int) -> bytes:
    """A phone-like JPEG: 4:3, noise (compresses like a photo), EXIF orientation and GPS."""
    w = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    h = int(w * 3 / 4)
    noise = Image.effect_noise((w // 4, h // 4), 40 + seed % 20).resize((w, h), Image.Resampling.BICUBIC)
    im = Image.merge("RGB", [noise, noise.rotate(90, expand=False), noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, float(seed % 60)), 3: "E", 4: (2.0, 17.0, 40.0)}
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, exif=exif)
    return buf.getvalue()


def tree(pid: int) -> list[psutil.Process]:
    p = psutil.Process(pid)
    return [p, *p.children(recursive=True)]


def tree_cpu(pid: int) -> float:
    """CPU seconds of the process and its live children, plus what its waited-for children used."""
    total = 0.0
    for p in tree(pid):
        try:
            t = p.cpu_times()
            total += t.user + t.system + (t.children_user + t.children_system if p.pid == pid else 0)
        except psutil.NoSuchProcess:
            pass
    return total


def tree_rss(pid: int) -> int:
    total = 0
    for p in tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _probe_main(url: str, stop: Any, ready: Any, out: Any) -> None:
    """GET /healthz every 10 ms until `stop` is set; the latencies (ms) into `out`. A process of its own: the
    uploaders' client work (and psutil's sampling) in the bench's own loop must not show up as server stalls."""
    got: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as c:
        while not stop.is_set():
            t = time.perf_counter()
            c.get("/healthz")
            got.append((time.perf_counter() - t) * 1000)
            ready.set()
            time.sleep(0.01)
    out.put(got)


class Probe:
    def __init__(self, url: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.stop, self.ready, self.out = ctx.Event(), ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(target=_probe_main, args=(url, self.stop, self.ready, self.out), daemon=True)
        self.proc.start()
        if not self.ready.wait(60):  # probing before the measured part starts
            raise RuntimeError("the /healthz probe did not start")

    def finish(self) -> list[float]:
        self.stop.set()
        got: list[float] = self.out.get(timeout=60)
        self.proc.join(10)
        return got


async def run(args: argparse.Namespace) -> dict[str, Any]:
    db = common.create_db()
    env = common.Env(db)
    try:
        proc = env.add(common.parley_proc(db, PARLEY_RENDER_WORKERS=str(args.workers)))
        url = f"http://127.0.0.1:{proc.port}"
        t = time.perf_counter()
        photos = [photo(i, args.megapixels, args.quality) for i in range(args.uploaders * args.rounds)]
        print(f"made {len(photos)} photos of {sum(map(len, photos)) / len(photos) / 1e6:.2f} MB on average "
              f"in {time.perf_counter() - t:.1f} s")
        clients = []
        for _ in range(args.uploaders):
            c = httpx.AsyncClient(base_url=url, timeout=300)
            r = await c.post("/api/users", json={"username": f"up{time.time_ns() % 10**12}{len(clients)}",
                                                  "password": "bench password 123"})
            r.raise_for_status()
            clients.append(c)
        # Warm the workers (their first decode imports Pillow's plugins) and take the idle baseline.
        (await clients[0].post("/api/uploads", files={"file": ("w.jpg", photo(10**6, 0.3, 80), "image/jpeg")}))
        idle_probe = Probe(url)
        await asyncio.sleep(args.idle_seconds)
        idle = idle_probe.finish()
        rss0, cpu0 = tree_rss(proc.pid), tree_cpu(proc.pid)
        peak = rss0
        statuses: dict[int, int] = {}
        latencies: list[float] = []

        async def uploader(i: int) -> None:
            for r in range(args.rounds):
                data = photos[i * args.rounds + r]
                t0 = time.perf_counter()
                resp = await clients[i].post("/api/uploads", files={"file": (f"IMG_{i}_{r}.jpg", data, "image/jpeg")})
                latencies.append(time.perf_counter() - t0)
                statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1

        sampling = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not sampling.is_set():
                peak = max(peak, tree_rss(proc.pid))
                time.sleep(0.05)

        busy_probe = Probe(url)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        await asyncio.gather(*(uploader(i) for i in range(args.uploaders)))
        elapsed = time.perf_counter() - t0
        sampling.set()
        busy = busy_probe.finish()
        sampler.join()
        cpu = tree_cpu(proc.pid) - cpu0
        n = sum(statuses.values())
        for c in clients:
            await c.aclose()
        result = {
            "uploaders": args.uploaders, "rounds": args.rounds, "workers": args.workers,
            "photo_mb": round(sum(map(len, photos)) / len(photos) / 1e6, 2), "megapixels": args.megapixels,
            "statuses": statuses, "seconds": round(elapsed, 2), "uploads_per_s": round(n / elapsed, 2),
            "cpu_s_per_upload": round(cpu / n, 3),
            "upload_p50_s": round(common.pct(sorted(latencies), 50) or 0, 2),  # pct() takes a sorted list
            "upload_p99_s": round(common.pct(sorted(latencies), 99) or 0, 2),
            "rss_before_mb": round(rss0 / 2**20), "rss_peak_mb": round(peak / 2**20),
            "healthz_idle_ms": common.summary_ms(list(idle)),
            "healthz_busy_ms": common.summary_ms(list(busy)),
            "healthz_idle_max_ms": round(max(idle), 1), "healthz_busy_max_ms": round(max(busy), 1),
        }
        return result
    finally:
        env.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploaders", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="photos per uploader")
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality of the photos (size ~4 MB at 12 MP)")
    ap.add_argument("--workers", type=int, default=2, help="PARLEY_RENDER_WORKERS (image workers too)")
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    args = ap.parse_args(argv)
    common.ensure_services()
    result = asyncio.run(run(args))
    path = common.write_result("uploads", result)
    for k, v in result.items():
        print(f"{k:>22}: {v}")
    print(f"written to {path}")
    return result


if __name__ == "__main__":
    main()
