# pygoka runtime base image: users build FROM it with their code, e.g.
#   FROM ghcr.io/pygoka/pygoka-runtime:0.1.0
#   COPY clicks/ /app/clicks/
# and reference the GroupGraph as `clicks.app:graph` in a ProcessorGroup (PYTHONPATH includes /app).
# Build: docker build -f docker/runtime.Dockerfile -t pygoka-runtime .
# BASE: any image laid out as python:3.11-slim (scripts/images.sh passes one built from Debian packages).
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime/ runtime/
COPY operator/ operator/
RUN pip install --no-cache-dir --prefix=/install .

FROM ${BASE}
COPY --from=build /install /usr/local
# A fixed non-root uid: the operator's pods run as 10001 with fsGroup 10001 so the state volume is writable.
RUN groupadd --gid 10001 pygoka && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin pygoka \
    && mkdir -p /app /var/lib/pygoka && chown 10001:10001 /var/lib/pygoka
WORKDIR /app
# Read-only root filesystem friendly: no bytecode writes, state and temp files on mounted volumes only.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PYGOKA_STATE_DIR=/var/lib/pygoka \
    TMPDIR=/tmp
USER 10001:10001
EXPOSE 8080
ENTRYPOINT []
CMD ["pygoka", "--help"]
