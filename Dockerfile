# JuistePlek service image: slim, non-root, with a health check.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 juisteplek
WORKDIR /srv/juisteplek
COPY --from=build /install /usr/local
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
USER juisteplek
ENV JUISTEPLEK_ENV=production JUISTEPLEK_LOG_FORMAT=json PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
CMD ["sh", "-c", "juisteplek migrate && juisteplek serve --host 0.0.0.0 --port 8000 --workers ${WORKERS:-2}"]
