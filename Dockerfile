# syntax=docker/dockerfile:1.7
# Tipline: one image, every role. `docker run IMAGE intake|mail|staff|worker|all|migrate` (see
# deploy/entrypoint.sh). Runs as uid 10001 with a read-only root filesystem: the data dir is a volume,
# TMPDIR a tmpfs. Dependencies come only from requirements.lock (deploy/lock.py), never resolved here.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Compilers only here, for any dependency without a wheel; the final stage has none.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-deps --require-virtualenv -r /tmp/requirements.lock
WORKDIR /app
COPY pyproject.toml alembic.ini ./
COPY alembic ./alembic
COPY service ./service
# Editable: the code stays in /app beside alembic/ (migrations are found relative to the package).
RUN pip install --no-deps --require-virtualenv -e . \
    && python -m compileall -q /app/service /app/alembic /opt/venv/lib

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="tipline" \
      org.opencontainers.image.description="Tip intake and clue registry"
# Attachment cleaning runs Debian's mat2 (with exiftool, Poppler, cairo) and ffmpeg as commands
# (docs/security.md). No recommends: bubblewrap cannot make namespaces as uid 10001 under the default seccomp
# profile, so mat2 runs unsandboxed inside this container, in a scrubbed environment.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends mat2 ffmpeg libimage-exiftool-perl \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    PORT=8000 \
    TIPLINE_ENVIRONMENT=production \
    TIPLINE_DATA_DIR=/var/lib/tipline \
    TIPLINE_KEYS_DIR=/run/tipline-keys \
    TIPLINE_ATTACHMENT_SCRATCH_DIR=/dev/shm
RUN groupadd --system --gid 10001 tipline \
    && useradd --system --uid 10001 --gid tipline --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin tipline \
    && mkdir -p /var/lib/tipline \
    && chown tipline:tipline /var/lib/tipline \
    && chmod 0700 /var/lib/tipline
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/tipline-entrypoint
WORKDIR /app
USER 10001:10001
VOLUME ["/var/lib/tipline"]
EXPOSE 8000
# Liveness of the process; readiness (/readyz, the database) is for the orchestrator's traffic decisions.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('PORT', '8000'), timeout=4)"]
ENTRYPOINT ["/usr/local/bin/tipline-entrypoint"]
CMD ["all"]
