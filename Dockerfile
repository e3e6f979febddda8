# leaf7 service image. Point it at Redis or Valkey with REDIS_URL (recommended in production);
# without it the embedded Valkey keeps its data in /data (mount a volume there).
FROM python:3.11-slim AS build
WORKDIR /src
# The build backend from its lock (hashes checked), then the project wheel alone: --no-deps and
# --no-build-isolation, so nothing is resolved outside the lock files.
COPY requirements/build.txt ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/build.txt
COPY pyproject.toml setup.cfg README.md ./
COPY service ./service
COPY handlers ./handlers
COPY store ./store
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM python:3.11-slim
# jemalloc: the embedded Valkey runs on it when present (see service/embedded.py).
RUN apt-get update && apt-get install -y --no-install-recommends libjemalloc2 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app leaf7 \
    && mkdir -p /data && chown leaf7 /data
# Runtime dependencies exactly as locked (versions and sha256 hashes), then leaf7 itself with
# --no-deps.
COPY requirements/runtime.txt /tmp/runtime.txt
RUN pip install --no-cache-dir --require-hashes -r /tmp/runtime.txt && rm /tmp/runtime.txt
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-deps /wheels/*.whl && rm -rf /wheels
USER leaf7
WORKDIR /app
ENV LEAF7_HOST=0.0.0.0 \
    LEAF7_PORT=8000 \
    LEAF7_DATA_DIR=/data \
    LEAF7_SHUTDOWN_TIMEOUT=5 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
# Exec form: leaf7 is PID 1 and receives SIGTERM directly (no shell in between). On SIGTERM
# it stops accepting, lets in-flight requests finish for up to LEAF7_SHUTDOWN_TIMEOUT seconds,
# then drains the Redis pipeline and stops the embedded Valkey cleanly: keep the sum below
# `docker stop`'s grace period (10 s by default).
STOPSIGNAL SIGTERM
ENTRYPOINT ["leaf7"]
CMD ["serve"]
