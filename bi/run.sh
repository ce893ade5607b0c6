#!/usr/bin/env bash
# `make bi`: set up Superset over the serving snapshot and serve it on 127.0.0.1 in the foreground.
#
# Every start re-applies the set-up, so a changed setting or dashboard file takes effect: migrate
# the metadata database, sync Superset's roles, make sure the admin login exists with
# BI_ADMIN_PASSWORD, and import the dashboard (bi/superset/, with the snapshot's path filled in)
# over the previous copy (bi/setup_superset.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

if [[ -f .env ]]; then
    # Settings from .env, without overriding what the environment already sets.
    while IFS='=' read -r name value; do
        [[ "$name" =~ ^[A-Z_][A-Z0-9_]*$ ]] || continue
        if [[ -z "${!name+x}" ]]; then export "$name=$value"; fi
    done < .env
fi

absolute() { [[ "$1" = /* ]] && echo "$1" || echo "$ROOT/$1"; }
SERVING_PATH="$(absolute "${SERVING_PATH:-data/serving/marts.duckdb}")"
export BI_HOME="$(absolute "${BI_HOME:-data/bi}")"
BI_PORT="${BI_PORT:-8088}"
BI_ADMIN_USER="${BI_ADMIN_USER:-admin}"
export BI_ADMIN_PASSWORD="${BI_ADMIN_PASSWORD:-admin}"
BI_VENV="$(absolute "${BI_VENV:-.bi-venv}")"

if [[ ! -f "$SERVING_PATH" ]]; then
    echo "make bi: no serving snapshot at $SERVING_PATH (SERVING_PATH). Run \`make demo\` (or a refresh) first." >&2
    exit 1
fi

export SUPERSET_CONFIG_PATH="$ROOT/bi/superset_config.py"
export SUPERSET_HOME="$BI_HOME"
export FLASK_APP=superset
mkdir -p "$BI_HOME"
superset() { "$BI_VENV/bin/superset" "$@"; }

echo "Superset: metadata in $BI_HOME, snapshot $SERVING_PATH (read-only)"
log="$BI_HOME/setup.log"
step() { "$@" >>"$log" 2>&1 || { tail -n 40 "$log" >&2; echo "make bi: '$1 ${2:-}' failed; the whole log is $log" >&2; exit 1; }; }
: >"$log"
step superset db upgrade
step superset init
step "$BI_VENV/bin/python" bi/setup_superset.py \
    --serving-path "$SERVING_PATH" --bundle "$BI_HOME/dashboard.zip" --username "$BI_ADMIN_USER"

echo "Superset: http://127.0.0.1:$BI_PORT/superset/dashboard/marketing/ (login $BI_ADMIN_USER; Ctrl-C stops it)"
exec "$BI_VENV/bin/gunicorn" --bind "127.0.0.1:$BI_PORT" --workers 1 --worker-class gthread --threads 8 \
    --timeout 120 --graceful-timeout 5 --no-control-socket --access-logfile - "superset.app:create_app()"
