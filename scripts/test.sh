#!/usr/bin/env bash
# Runs the whole test suite (real tshark, real captures, real servers in
# network namespaces). Sets the machine up first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check postproc tests bench captures/lab
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
