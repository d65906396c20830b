#!/usr/bin/env bash
# Runs diditflow on one machine: the Temporal dev server (unless
# TEMPORAL_ADDRESS points at a running one), the worker and the starter.
# Called by `make run`; Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="$PWD/bin"
DATA="${DIDITFLOW_DATA:-$PWD/.data}"
UI_PORT="${TEMPORAL_UI_PORT:-8233}"
mkdir -p "$DATA"

export DIDIT_WEBHOOK_SECRETS="${DIDIT_WEBHOOK_SECRETS:-dev-secret-change-me}"
export HTTP_ADDR="${HTTP_ADDR:-127.0.0.1:8080}"
export LOG_FORMAT="${LOG_FORMAT:-text}"
export TEMPORAL_TASK_QUEUE="${TEMPORAL_TASK_QUEUE:-diditflow}"
export DATABASE_URL="${DATABASE_URL:-$DATA/diditflow.db}"
export OUTBOX_DIR="${OUTBOX_DIR:-$DATA/outbox}"

pids=()
stop() {
  local code=${1:-0}
  trap - INT TERM EXIT
  echo "[run] stopping…"
  # Last started first: the starter, so no delivery is accepted that nobody
  # will process, then the worker, then Temporal.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "[run] stopped"
  exit "$code"
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

# start NAME CMD...: runs CMD with its output prefixed by [NAME]. Each runs
# in its own session, so Ctrl-C reaches only this script, which then stops
# them in order; the prefixing sed ignores it and ends with its input.
start() {
  local name=$1
  shift
  setsid "$@" > >(trap '' INT TERM; exec sed -u "s/^/[$name] /") 2>&1 &
  pids+=("$!")
}

healthy() { "$BIN/temporal" operator cluster health --address "$1" >/dev/null 2>&1; }

# The workflows upsert these; Temporal refuses unregistered ones.
SEARCH_ATTRIBUTES=(DiditStatus=Keyword DiditAMLHit=Bool DiditNeedsAttention=Bool DiditVendorData=Keyword)

if [[ -n "${TEMPORAL_ADDRESS:-}" ]] && healthy "$TEMPORAL_ADDRESS"; then
  echo "[run] using the Temporal server at $TEMPORAL_ADDRESS"
else
  export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
  port="${TEMPORAL_ADDRESS##*:}"
  start temporal "$BIN/temporal" server start-dev \
    --ip 127.0.0.1 --port "$port" --ui-port "$UI_PORT" \
    --db-filename "$DATA/temporal.db" --log-level warn
  for _ in $(seq 1 120); do
    healthy "$TEMPORAL_ADDRESS" && break
    sleep 0.5
  done
  healthy "$TEMPORAL_ADDRESS" || { echo "[run] Temporal did not become healthy"; exit 1; }
fi
for sa in "${SEARCH_ATTRIBUTES[@]}"; do
  # Fails harmlessly when the attribute exists already.
  "$BIN/temporal" operator search-attribute create --address "$TEMPORAL_ADDRESS" \
    --namespace "${TEMPORAL_NAMESPACE:-default}" --name "${sa%%=*}" --type "${sa##*=}" >/dev/null 2>&1 || true
done

go build -o "$BIN/" ./starter ./worker
start worker "$BIN/worker"
start starter "$BIN/starter"

for _ in $(seq 1 100); do
  "$BIN/starter" -healthcheck 2>/dev/null && break
  sleep 0.2
done

cat <<MSG
[run] diditflow is up
[run]   webhook endpoint  http://$HTTP_ADDR/webhooks/didit
[run]   webhook secret    $DIDIT_WEBHOOK_SECRETS
[run]   Temporal UI       http://localhost:$UI_PORT  (workflow IDs: didit-session-<session_id>)
[run]   records           $DATABASE_URL
[run]   mail              $OUTBOX_DIR  (SMTP_URL unset: one .eml file per message)
[run] next: send a verification, then look at the UI, the records and the mail:
[run]   go run ./cmd/didit-sim -scenario approved        (or declined-aml, in-review-then-approved, …)
[run] Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "[run] a component exited; stopping the rest"
stop 1
