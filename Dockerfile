# Parley application image.
#
#   docker build -t parley .
#   docker run --rm -p 8000:8000 -e DATABASE_URL=... -e REDIS_URL=... -e PARLEY_SECRET=... parley
#
# Two stages: the first installs the project's dependencies into a virtualenv;
# the second copies that virtualenv and the project files (pyproject.toml,
# server/, web/, schema.sql, README.md -- .dockerignore lets nothing else in)
# onto a clean slim base and runs them as an unprivileged user. No compiler,
# no tests, no .git, no pip cache in the result.
#
# The project is installed in place (pip -e) at /opt/parley/app rather than as
# a wheel into site-packages, because the server finds schema.sql and web/
# beside its package directory (server/config.py: ROOT). The files are owned
# by root and read-only to the `parley` user.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The context is already reduced to what runs (see .dockerignore).
COPY . /opt/parley/app
RUN python -m venv /opt/parley/venv \
 && /opt/parley/venv/bin/pip install -e /opt/parley/app \
 && /opt/parley/venv/bin/parley --help >/dev/null


FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="parley" \
      org.opencontainers.image.description="Parley: real-time Q&A discussion service"

ENV PATH=/opt/parley/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PARLEY_LOG_FORMAT=json \
    PARLEY_DATA_DIR=/data

# Unprivileged user. Without DATABASE_URL/PARLEY_SECRET the server keeps an
# embedded database and a generated secret in PARLEY_DATA_DIR, which is the
# only place it may write (compose sets both, so nothing is kept there).
RUN groupadd --system --gid 10001 parley \
 && useradd --system --uid 10001 --gid parley --home-dir /data --create-home --shell /usr/sbin/nologin parley

COPY --from=build /opt/parley /opt/parley

USER parley:parley
WORKDIR /data
EXPOSE 8000

# Liveness only (the process answers). Readiness (database and broker
# reachable) is GET /readyz, for load balancers and orchestrators.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]

# SIGTERM (docker stop) starts a graceful shutdown: sockets are closed with
# 1012 so clients reconnect to another process and resume with `since`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["parley"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
