# Khuyến học Bot — one image for every instance: `khuyenhoc run` serves the web chat, webhooks,
# /health and /metrics on port 8080, migrating the database first.
# Embedded default: SQLite in the /app/data volume, for one instance. PostgreSQL: set
# DATABASE_URL; docker-compose.yml runs two instances behind a proxy (docs/deploy.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies and the packages first, so that editing content does not reinstall them.
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY storage ./storage
RUN pip install . && rm -rf build *.egg-info

# Forms, articles, campaigns and sample units, read at run time from CONTENT_DIR.
COPY content ./content

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin khuyenhoc \
    && mkdir -p /app/data \
    && chown khuyenhoc /app/data
USER khuyenhoc

ENV DATABASE_URL=sqlite+aiosqlite:////app/data/khuyenhoc.db \
    CONTENT_DIR=/app/content \
    HOST=0.0.0.0 \
    PORT=8080
VOLUME ["/app/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]

CMD ["khuyenhoc", "run", "--host", "0.0.0.0"]
