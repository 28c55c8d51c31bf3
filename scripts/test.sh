#!/usr/bin/env bash
# The test command: set up .venv if needed, then run the default (fast) test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/advembed ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet torch==2.13.0 -e '.[dev]'
fi
.venv/bin/ruff check src tests benchmarks examples
exec .venv/bin/python -m pytest -q "$@"
