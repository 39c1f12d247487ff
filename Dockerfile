# techmatch: matching enterprise needs with research results. Serves the API on port 8000 by default.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TECHMATCH_HOME=/var/lib/techmatch TECHMATCH_CACHE_DIR=/var/lib/techmatch/cache
RUN apt-get update && apt-get install -y --no-install-recommends fonts-noto-cjk && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY techmatch ./techmatch
COPY recommender ./recommender
COPY embeddings ./embeddings
COPY service ./service
COPY eval ./eval
COPY data ./data
RUN pip install --upgrade pip && pip install .
VOLUME ["/var/lib/techmatch"]
EXPOSE 8000
ENTRYPOINT ["techmatch"]
# Load demo data first if wanted: docker run ... techmatch load-demo --size small
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
