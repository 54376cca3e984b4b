# Parley application image.
#
#   docker build -t parley .
#   docker run --rm -p 8000:8000 -e DATABASE_URL=... -e REDIS_URL=... -e PARLEY_SECRET=... parley
#
# Two stages: the first builds Parley's wheel and installs it, with its
# dependencies, into a virtualenv; the second copies only that virtualenv onto
# a clean slim base and runs it as an unprivileged user. The schema migrations
# and the page are package data inside the wheel, so nothing of the checkout is
# needed at run time. No compiler, no tests, no .git, no pip cache in the result.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The context is already reduced to what the wheel is built from (see .dockerignore).
COPY . /opt/parley/src
RUN python -m venv /opt/parley/venv \
 && /opt/parley/venv/bin/pip wheel --no-deps -w /opt/parley/dist /opt/parley/src \
 && /opt/parley/venv/bin/pip install /opt/parley/dist/parley-*.whl \
 && rm -rf /opt/parley/src /opt/parley/dist \
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
