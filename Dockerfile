# One image for every service: the command picks it (python -m services.<name>).
FROM python:3.11.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir .
USER 65534
CMD ["python", "-m", "services.api"]
