#!/usr/bin/env bash
# make test-cluster: starts make cluster's stack (Temporal's four services on
# PostgreSQL, two workers, two starters), runs the end-to-end suite against
# its frontend, a smoke run of sessions through both starters, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/bin"
log="$(mktemp -t diditflow-cluster-XXXX.log)"
work="$(mktemp -d -t diditflow-cluster-test-XXXX)"
# A real SMTP server that logs every message it receives: a notice sent
# twice shows as two receipts (the outbox would overwrite it).
go build -o "$work/" ./cmd/mailsink ./cmd/didit-sim
"$work/mailsink" -addr 127.0.0.1:2526 -dir "$work/mail" >"$work/mailsink.log" 2>&1 &
sink=$!
SMTP_URL="smtp://127.0.0.1:2526?starttls=off" SESSION_IDLE_WINDOW=2s "$BIN/cluster" >"$log" 2>&1 &
pid=$!
stop() {
  kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  kill -TERM "$sink" 2>/dev/null || true; wait "$sink" 2>/dev/null || true
}
trap stop EXIT
received() { grep -c '^mailsink: "' "$work/mailsink.log" || true; }
# wait_mails N: until the sink has received N messages (3 minutes at most).
wait_mails() {
  for _ in $(seq 1 180); do
    [[ $(received) -ge $1 ]] && break
    sleep 1
  done
}
for _ in $(seq 1 180); do
  curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1 && curl -fsS http://127.0.0.1:8090/readyz >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 1
done
curl -fsS http://127.0.0.1:8080/readyz >/dev/null || { echo "the cluster did not become ready; its log:"; cat "$log"; exit 1; }
echo "[test-cluster] cluster ready (log: $log)"

# Sessions through both starters, every one to its final record and mail.
sim() { "$work/didit-sim" -scenario approved -retry-delays 2s,4s,8s "$@"; }
sim -sessions 20 -url http://127.0.0.1:8080/webhooks/didit | tail -1
sim -sessions 20 -url http://127.0.0.1:8090/webhooks/didit | tail -1
wait_mails 40
[[ $(received) -eq 40 ]] || { echo "[test-cluster] $(received) approval mails for 40 sessions"; exit 1; }
echo "[test-cluster] 40 sessions through two starters and two workers: 40 approval mails"

# Chaos: a flood through both starters while the history service and a
# worker are SIGKILLed (the cluster restarts both). Deliveries refused
# meanwhile get 503 and are retried, as Didit would (its delays scaled
# down); every session must end mailed once.
sim -sessions 100 -rate 10 -url http://127.0.0.1:8080/webhooks/didit >"$work/flood-1.log" 2>&1 &
f1=$!
sim -sessions 100 -rate 10 -url http://127.0.0.1:8090/webhooks/didit >"$work/flood-2.log" 2>&1 &
f2=$!
sleep 3
echo "[test-cluster] SIGKILL the history service"
pkill -KILL -f -- "--service history"
sleep 3
echo "[test-cluster] SIGKILL a diditflow worker"
kill -KILL "$(pgrep -f cluster/bin/worker | head -1)"
wait "$f1" "$f2" || true
tail -1 "$work/flood-1.log"; tail -1 "$work/flood-2.log"
for f in "$work"/flood-*.log; do
  tail -1 "$f" | grep -Eq '^100 session\(s\), 200 deliveries: +200×200$' ||
    { echo "[test-cluster] a delivery was not accepted within Didit's retries: $(tail -1 "$f")"; exit 1; }
done
wait_mails 240
sleep 5 # a duplicate would come after the last expected one
got=$(received)
[[ $got -eq 240 ]] || { echo "[test-cluster] $got mails after the chaos run, want 240: $((got - 240)) lost or duplicated"; exit 1; }
grep -q "process exited; restarting" "$log" || { echo "[test-cluster] the cluster did not restart what was killed"; exit 1; }
echo "[test-cluster] chaos: history service and a worker killed mid-flood: 200 sessions, 0 lost, no notice twice"

# The chaos ledger's short run on the cluster: its own worker, starter,
# records and SMTP server; "Temporal down" freezes the cluster's frontend.
TEMPORAL_ADDRESS=127.0.0.1:7233 go run ./cmd/chaos -short

TEST_TEMPORAL_ADDRESS=127.0.0.1:7233 go test -count=1 -timeout 30m ./internal/harness/e2e/ ./internal/receiver/ "$@"
