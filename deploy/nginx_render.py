#!/usr/bin/env python3
"""Render deploy/nginx.conf for hosts without Docker (or for a loopback test).

The compose file's nginx.conf names its upstreams by compose service name
(app1:8000, app2:8000), which resolve only on the compose network. This script
rewrites exactly the lines marked in that file and nothing else:

- ``# parley:upstream``: the ``server`` lines of ``upstream parley`` become one
  line per ``--upstream HOST:PORT`` (same parameters as the original lines);
- ``# parley:listen``: the ``listen`` line becomes ``listen ADDR;``;
- ``# parley:access_log``: with ``--prefix-relative``, the access log goes to
  ``logs/access.log`` and the temp paths are set under the prefix, so that an
  unprivileged nginx can run with ``-p PREFIX`` (as the tests do).

Usage:
    python3 deploy/nginx_render.py --listen 0.0.0.0:80 \\
        --upstream 10.0.0.11:8000 --upstream 10.0.0.12:8000 > /etc/nginx/nginx.conf
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "nginx.conf"

_SERVER_LINE = re.compile(r"^(\s*)server\s+(\S+?)(\s+[^;]*)?;\s*$")
_LISTEN_LINE = re.compile(r"^(\s*)listen\s+[^;]+;(.*#\s*parley:listen.*)$")
_ACCESS_LOG_LINE = re.compile(r"^(\s*)access_log\s+\S+(\s+[^;]*)?;(.*#\s*parley:access_log.*)$")

TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def render(
    upstreams: list[str],
    listen: str,
    *,
    prefix_relative: bool = False,
    source: str | None = None,
) -> str:
    """Return nginx.conf with the marked lines rewritten; raise ValueError if a marker is missing."""
    if not upstreams:
        raise ValueError("at least one upstream is needed")
    for u in upstreams:
        if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]:]+:\d+", u):
            raise ValueError(f"upstream must be HOST:PORT, got {u!r}")
    text = SOURCE.read_text() if source is None else source
    out: list[str] = []
    in_upstream = False
    saw = {"upstream": False, "listen": False, "access_log": False}
    replaced_servers = False
    for line in text.splitlines():
        stripped = line.strip()
        if re.match(r"upstream\s+parley\s*\{", stripped):
            in_upstream = True
            out.append(line)
            continue
        if in_upstream:
            if "parley:upstream" in line:
                saw["upstream"] = True
            if stripped == "}":
                in_upstream = False
            else:
                m = _SERVER_LINE.match(line)
                if m:
                    if not replaced_servers:
                        indent, params = m.group(1), (m.group(3) or "")
                        for u in upstreams:
                            out.append(f"{indent}server {u}{params};")
                        replaced_servers = True
                    continue
            out.append(line)
            continue
        m = _LISTEN_LINE.match(line)
        if m:
            saw["listen"] = True
            out.append(f"{m.group(1)}listen {listen};{m.group(2)}")
            continue
        m = _ACCESS_LOG_LINE.match(line)
        if m:
            saw["access_log"] = True
            if prefix_relative:
                indent, fmt, tail = m.group(1), (m.group(2) or ""), m.group(3)
                out.append(f"{indent}access_log logs/access.log{fmt};{tail}")
                for name in TEMP_PATHS:
                    out.append(f"{indent}{name}_temp_path temp/{name};")
            else:
                out.append(line)
            continue
        out.append(line)
    missing = [k for k, v in saw.items() if not v]
    if missing or not replaced_servers:
        raise ValueError(f"nginx.conf lacks the marked lines: {missing or ['upstream server']}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", action="append", required=True, metavar="HOST:PORT",
                    help="an app process; repeat for each")
    ap.add_argument("--listen", default="80", help="nginx listen address (default 80)")
    ap.add_argument("--prefix-relative", action="store_true",
                    help="logs and temp files under nginx's -p prefix (unprivileged runs)")
    args = ap.parse_args(argv)
    try:
        sys.stdout.write(render(args.upstream, args.listen, prefix_relative=args.prefix_relative))
    except ValueError as e:
        print(f"nginx_render: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
