# syntax=docker/dockerfile:1
# warroom's image: the API, the worker and the CLI (docker-compose.yml runs each
# with its own command). Configuration comes from WARROOM_* environment variables.

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY warroom ./warroom
RUN python -m venv /opt/warroom && /opt/warroom/bin/pip install .

FROM python:3.11.11-slim-bookworm
# Programs that shipped runbooks run in shell steps (tests/deploy checks the list):
# openssl for the certificate checks, with the CA list they verify against.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 warroom \
 && useradd --system --uid 10001 --gid warroom --home-dir /var/lib/warroom --create-home --shell /usr/sbin/nologin warroom
COPY --from=build /opt/warroom /opt/warroom
ENV PATH=/opt/warroom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WARROOM_DATA_DIR=/var/lib/warroom \
    WARROOM_HTTP_HOST=0.0.0.0 \
    WARROOM_HTTP_PORT=8000 \
    WARROOM_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/warroom
EXPOSE 8000
CMD ["python", "-m", "warroom.api.main"]
