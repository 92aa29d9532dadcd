# callgate: one image for every process kind (serve, worker, migrate).
#   docker build -t callgate .
#   docker run -p 8080:8080 -v callgate-data:/data callgate                     # SQLite on a volume
#   docker run -e CALLGATE_DATABASE_URL=postgresql+asyncpg://… callgate           # PostgreSQL
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CALLGATE_HOST=0.0.0.0 \
    CALLGATE_PORT=8080 \
    CALLGATE_DATABASE_URL=sqlite+aiosqlite:////data/callgate.db \
    CALLGATE_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
RUN pip install . \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin callgate \
 && mkdir -p /data && chown callgate /data

USER callgate
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"
CMD ["callgate", "serve"]
