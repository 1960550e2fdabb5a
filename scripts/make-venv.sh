#!/usr/bin/env bash
# Creates a Python virtual environment at VENV unless one is there already; on Debian, where
# `python3 -m venv` needs the python3-venv package, installs it first when running as root.
# Usage: scripts/make-venv.sh VENV
set -euo pipefail
venv=${1:?usage: scripts/make-venv.sh VENV}
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] && exit 0
if ! "$python" -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing python3-venv …" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
        "$python" -m venv "$venv"
    else
        echo "error: '$python -m venv' failed; on Debian: apt-get install python3-venv" >&2
        exit 1
    fi
fi
