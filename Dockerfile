# JuistePlek service image: slim, non-root, the server as PID 1, a readiness health check.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY app ./app
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 juisteplek \
 && mkdir -p /var/lib/juisteplek && chown juisteplek:juisteplek /var/lib/juisteplek
# The installed package carries its Alembic migrations; nothing is read from the build context.
COPY --from=build /install /usr/local
WORKDIR /var/lib/juisteplek
USER juisteplek
# The SQLite default lives in a writable volume; set JUISTEPLEK_DATABASE_URL for PostgreSQL.
VOLUME ["/var/lib/juisteplek"]
ENV JUISTEPLEK_ENV=production JUISTEPLEK_LOG_FORMAT=json PYTHONUNBUFFERED=1 \
    JUISTEPLEK_DATABASE_URL=sqlite+aiosqlite:////var/lib/juisteplek/juisteplek.db \
    JUISTEPLEK_WORKERS=2
EXPOSE 8000
# Ready = the database answers and its schema is at the head (503 while it is down).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
# Exec form: the server is PID 1 and receives SIGTERM itself. --migrate runs `juisteplek migrate`
# first, under a PostgreSQL advisory lock, so replicas may start together.
CMD ["juisteplek", "serve", "--migrate", "--host", "0.0.0.0", "--port", "8000"]
