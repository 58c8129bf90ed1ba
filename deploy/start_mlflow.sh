#!/usr/bin/env bash
# Start the MLflow tracking server: on the Ray head (a head_start_ray_command of cluster.yaml)
# or as the container command of kuberay/mlflow.yaml (MLFLOW_FOREGROUND=1, MLFLOW_HOST=0.0.0.0).
#
# PostgreSQL backend store, artifacts in S3 (proxied by the server, so clients need no S3
# credentials), the basic-auth app (MLflow refuses to start it without an admin password,
# read here from the environment, never from a file in the repo), bound to 127.0.0.1 on a VM:
# users reach it through `ray attach deploy/cluster.yaml -p 5000` (SSH port forwarding).
set -euo pipefail
port="${MLFLOW_PORT:-5000}"
case "${MLFLOW_TRACKING_URI:-http://127.0.0.1:$port}" in
    http://127.0.0.1:*|http://localhost:*) ;;
    *) echo "MLFLOW_TRACKING_URI is $MLFLOW_TRACKING_URI: using that server, none started here"; exit 0;;
esac
: "${MLFLOW_BACKEND_STORE_URI:?set it in ~/.cxr-tune/cluster.env: postgresql+psycopg://USER:PASS@HOST:5432/mlflow}"
: "${MLFLOW_AUTH_DATABASE_URI:?set it in ~/.cxr-tune/cluster.env: postgresql+psycopg://USER:PASS@HOST:5432/mlflow_auth}"
: "${MLFLOW_AUTH_ADMIN_USERNAME:?set it in ~/.cxr-tune/cluster.env}"
: "${MLFLOW_AUTH_ADMIN_PASSWORD:?set it in ~/.cxr-tune/cluster.env}"
artifacts="${MLFLOW_ARTIFACTS_DESTINATION:-s3://${CXR_TUNE_BUCKET:?set CXR_TUNE_BUCKET or MLFLOW_ARTIFACTS_DESTINATION}/mlflow-artifacts}"
state="$HOME/.cxr-tune"
mkdir -p -m 700 "$state"
# A store URI whose driver is not installed fails here in one line, not in the server's log.
python - "$MLFLOW_BACKEND_STORE_URI" "$MLFLOW_AUTH_DATABASE_URI" <<'PY'
import sys
from sqlalchemy.engine import make_url
for name, uri in zip(("MLFLOW_BACKEND_STORE_URI", "MLFLOW_AUTH_DATABASE_URI"), sys.argv[1:]):
    try:
        url = make_url(uri)
    except Exception:
        continue  # not an SQLAlchemy URI: MLflow says what it makes of it
    try:
        url.get_dialect().import_dbapi()
    except ImportError as e:
        sys.exit(f"error: {name} is a {url.drivername}:// URI, whose driver ({e.name}) is not installed; "
                 "the image has psycopg 3: write postgresql+psycopg://USER:PASS@HOST:5432/DB")
PY

# The auth app reads its database URI from an ini file; write it at start, owner-only.
umask 077
cat > "$state/mlflow_auth.ini" <<INI
[mlflow]
default_permission = READ
database_uri = ${MLFLOW_AUTH_DATABASE_URI}
admin_username = ${MLFLOW_AUTH_ADMIN_USERNAME}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
export MLFLOW_AUTH_CONFIG_PATH="$state/mlflow_auth.ini"
# The auth app's CSRF key: generated once per server host, kept owner-only, reused on restarts.
if [ -z "${MLFLOW_FLASK_SERVER_SECRET_KEY:-}" ]; then
    [ -s "$state/flask_secret_key" ] || python -c "import secrets; print(secrets.token_hex(32))" > "$state/flask_secret_key"
    MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$state/flask_secret_key")"
fi
export MLFLOW_FLASK_SERVER_SECRET_KEY
# Tracking only: no GenAI job runner (it forks a dozen huey consumers next to the server).
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
args=(server --app-name basic-auth --host "${MLFLOW_HOST:-127.0.0.1}" --port "$port" --workers "${MLFLOW_WORKERS:-4}"
      --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" --artifacts-destination "$artifacts")

if [ "${MLFLOW_FOREGROUND:-0}" = 1 ]; then
    exec mlflow "${args[@]}"
fi
# Restart cleanly on a re-run of `ray up`: stop only the server this script started.
if [ -f "$state/mlflow.pid" ] && kill -0 "$(cat "$state/mlflow.pid")" 2>/dev/null; then
    old="$(cat "$state/mlflow.pid")"
    kill "$old"
    for _ in $(seq 15); do kill -0 "$old" 2>/dev/null || break; sleep 1; done
    kill -9 "$old" 2>/dev/null || true
fi
nohup mlflow "${args[@]}" > "$state/mlflow.log" 2>&1 &
pid=$!
echo "$pid" > "$state/mlflow.pid"
# Up to 120 s for the first start (the store's migrations); a server that exits fails at once.
for _ in $(seq 240); do
    if curl -fsS "http://127.0.0.1:$port/health" > /dev/null 2>&1; then
        echo "MLflow on 127.0.0.1:$port (log: $state/mlflow.log)"; exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "MLflow exited before it answered; the end of $state/mlflow.log:" >&2
        tail -n 30 "$state/mlflow.log" >&2
        exit 1
    fi
    sleep 0.5
done
echo "MLflow did not answer on 127.0.0.1:$port in 120 s; the end of $state/mlflow.log:" >&2
tail -n 30 "$state/mlflow.log" >&2
exit 1
