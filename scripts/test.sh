#!/usr/bin/env bash
# The test command: set up (idempotent), check lint and types (ruff, mypy: zero findings), then
# run every tier (unit, conformance, end to end) against real Samba, RabbitMQ, Redis and an S3
# server started by the fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH:/usr/sbin:/sbin"  # smbd, slapd
echo "ruff:" && .venv/bin/ruff check --quiet . && echo "  no findings"
echo "mypy:" && .venv/bin/mypy
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
