#!/usr/bin/env bash
# make test-cluster: starts make cluster's stack (Temporal's four services on
# PostgreSQL, two workers, two starters), runs the end-to-end suite against
# its frontend, a smoke run of sessions through both starters, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/bin"
log="$(mktemp -t diditflow-cluster-XXXX.log)"
"$BIN/cluster" >"$log" 2>&1 &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 180); do
  curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1 && curl -fsS http://127.0.0.1:8090/readyz >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 1
done
curl -fsS http://127.0.0.1:8080/readyz >/dev/null || { echo "the cluster did not become ready; its log:"; cat "$log"; exit 1; }
echo "[test-cluster] cluster ready (log: $log)"

# Sessions through both starters, every one to its final record and mail.
outbox=.data/cluster/outbox
before=$(ls "$outbox" | wc -l)
go run ./cmd/didit-sim -scenario approved -sessions 20 -url http://127.0.0.1:8080/webhooks/didit
go run ./cmd/didit-sim -scenario approved -sessions 20 -url http://127.0.0.1:8090/webhooks/didit
for _ in $(seq 1 120); do
  [[ $(( $(ls "$outbox" | wc -l) - before )) -ge 40 ]] && break
  sleep 1
done
mailed=$(( $(ls "$outbox" | wc -l) - before ))
[[ $mailed -eq 40 ]] || { echo "[test-cluster] $mailed approval mails for 40 sessions"; exit 1; }
echo "[test-cluster] 40 sessions through two starters and two workers: 40 approval mails"

TEST_TEMPORAL_ADDRESS=127.0.0.1:7233 go test -count=1 -timeout 30m ./internal/harness/e2e/ ./internal/receiver/ "$@"
