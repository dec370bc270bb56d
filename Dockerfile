# bulkimg as a container: `docker run --env-file .env bulkimg build --all`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bulkimg ./bulkimg
COPY graphql ./graphql
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 --user-group bulkimg \
    && mkdir -p /work/output /work/logs \
    && chown -R bulkimg:bulkimg /work

USER 10001:10001
WORKDIR /work
ENTRYPOINT ["bulkimg"]
CMD ["--help"]
