# One image for every service: the command picks it (python -m services.<name>).
FROM python:3.11.11-slim-bookworm
WORKDIR /app
# gssapi and krb5 (Kerberos logons) build against MIT Kerberos; its libraries stay.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libkrb5-dev \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir .
USER 65534
CMD ["python", "-m", "services.api"]
