#!/usr/bin/env bash
# Set up (apt + venv, Redis, RabbitMQ) and run a demo sync of a local Samba share.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python scripts/demo.py
