# pygoka operator image (kopf). Build: docker build -f docker/operator.Dockerfile -t pygoka-operator .
# BASE: any image laid out as python:3.11-slim (scripts/images.sh passes one built from Debian packages).
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime/ runtime/
COPY operator/ operator/
RUN pip install --no-cache-dir --prefix=/install ".[operator]"

FROM ${BASE}
COPY --from=build /install /usr/local
RUN groupadd --gid 10001 pygoka && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin pygoka
# Read-only root filesystem friendly: the chart mounts an emptyDir at /tmp.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "pygoka_operator"]
