# Quiver: `docker build -t quiver .` then
# `docker run -p 8000:8000 -v quiver-data:/data quiver`.
# Both stages use the same base so the venv's interpreter symlinks resolve at runtime.

FROM python:3.11.13-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY quiver ./quiver
RUN pip install --no-cache-dir .


FROM python:3.11.13-slim-bookworm AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    QUIVER_DATA_DIR=/data

RUN groupadd --system --gid 10001 quiver \
    && useradd --system --uid 10001 --gid quiver --home-dir /home/quiver --create-home \
        --shell /usr/sbin/nologin quiver \
    && mkdir /data \
    && chown quiver:quiver /data

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /home/quiver
# Declared after the chown so a fresh named volume starts out owned by quiver.
VOLUME /data
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["quiver", "serve", "--host", "0.0.0.0", "--port", "8000"]
