#!/bin/sh
# Sets up .venv on first use (or when the requirements change), then runs the harness:
#   ./harness.sh run iris_baseline     ./harness.sh list     ./harness.sh test [pytest args]
set -e
cd "$(dirname "$0")"
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
stamp=.venv/.requirements
want=$(cat requirements.txt setup.cfg pyproject.toml | cksum)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setting up .venv (first run only; downloads TensorFlow, a few minutes)..." >&2
    "$PYTHON" -m venv .venv
    if ! { .venv/bin/python -m pip install --upgrade pip &&
           .venv/bin/python -m pip install -r requirements.txt -e ".[ray]"; } > .venv/install.log 2>&1; then
        tail -n 30 .venv/install.log >&2
        echo "installing failed; the whole log is in .venv/install.log" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi
if [ "$1" = test ]; then
    shift
    exec .venv/bin/python -m pytest "$@"
fi
exec .venv/bin/python -m harness "$@"
