# syntax=docker/dockerfile:1
# Two stages: the first builds wheels of grok2api and everything it needs, the second
# installs only those wheels into a slim image and runs the gateway as a non-root user.
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY grok2api grok2api
COPY plugins plugins
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="grok2api" \
      org.opencontainers.image.description="OpenAI-compatible gateway in front of Grok's web app" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels grok2api && rm -rf /wheels \
    && useradd --create-home --uid 10001 grok2api \
    && mkdir -p /app/data /app/logs && chown grok2api:grok2api /app/data /app/logs
WORKDIR /app
USER grok2api
ENV SERVER_HOST=0.0.0.0 SERVER_PORT=8000 DATA_DIR=/app/data PYTHONUNBUFFERED=1
EXPOSE 8000
VOLUME ["/app/data", "/app/logs"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['SERVER_PORT'], timeout=2)"]
CMD ["grok2api", "serve"]
