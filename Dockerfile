FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY grok2api grok2api
COPY plugins plugins
RUN pip install --no-cache-dir . && useradd --create-home grok2api && mkdir -p data logs && chown grok2api data logs
USER grok2api
ENV SERVER_HOST=0.0.0.0 SERVER_PORT=8000 DATA_DIR=/app/data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"SERVER_PORT\"]}/health', timeout=2)"
CMD ["grok2api", "serve"]
