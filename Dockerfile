# Front-end libraries (package.json: lightweight-charts for the chart widget), installed from the
# lock file in a stage of their own: a clean clone has no node_modules.
FROM node:20-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# One image for web (uvicorn, WEB_CONCURRENCY processes), worker and beat; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
# The production lock (every package pinned with its hashes; no embedded Redis, no test tools).
RUN pip install --no-cache-dir --require-hashes -r requirements.txt
COPY . .
COPY --from=assets /app/node_modules ./node_modules
RUN DEBUG=false SECRET_KEY=build-only-collectstatic-key-0123456789abcdef python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["python", "-m", "cryptosite.serve", "-b", "0.0.0.0", "-p", "8000"]
