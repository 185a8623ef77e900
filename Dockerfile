# One image for web (uvicorn, WEB_CONCURRENCY processes), worker and beat; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DEBUG=false SECRET_KEY=build-only-collectstatic-key-0123456789abcdef python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["python", "-m", "cryptosite.serve", "-b", "0.0.0.0", "-p", "8000"]
