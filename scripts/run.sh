#!/usr/bin/env bash
# Runs diditflow on one machine: the Temporal dev server (unless
# TEMPORAL_ADDRESS points at a running one), the worker and the starter.
# Called by `make run`; Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="$PWD/bin"
UI_PORT="${TEMPORAL_UI_PORT:-8233}"

# The binaries come first: they print their effective settings (-config) and
# the search attributes to register (-search-attributes), so that nothing
# below restates a default of the code (internal/config).
go build -o "$BIN/" ./starter ./worker ./cmd/didit-fake ./cmd/codec-server

# setting NAME SETTINGS: NAME's value in SETTINGS (the output of -config).
setting() { sed -n "s/^$1=//p" <<<"$2"; }

# Only what a dev run needs different from the code's defaults; an
# explicitly set variable always wins.
# A throwaway secret, since there is no Didit console behind a dev run (the
# code has no default: a real deployment must set Didit's). One the developer
# exported may be a real one: it is never printed, nor put on a command line
# (which every user of the machine can read in ps); the processes below read
# it from the environment.
if [[ -z "${DIDIT_WEBHOOK_SECRETS:-}" ]]; then
  export DIDIT_WEBHOOK_SECRETS=dev-secret-change-me
  secret_shown="$DIDIT_WEBHOOK_SECRETS  (a development secret; export DIDIT_WEBHOOK_SECRETS for your own)"
else
  secret_shown="yours, from DIDIT_WEBHOOK_SECRETS (not shown)"
fi
# Keep the dev receiver on loopback; the default listens on every interface.
export HTTP_ADDR="${HTTP_ADDR:-127.0.0.1:8080}"
# Readable logs in a terminal; the default, json, is for log collectors.
export LOG_FORMAT="${LOG_FORMAT:-text}"
# State goes to .data/ (git-ignored), where the records and outbox defaults
# already point. DIDITFLOW_DATA moves it: then the records and the outbox move
# too, keeping their default names.
DATA="$PWD/.data"
if [[ -n "${DIDITFLOW_DATA:-}" ]]; then
  DATA="$DIDITFLOW_DATA"
  defaults="$(unset DATABASE_URL OUTBOX_DIR; "$BIN/worker" -config)"
  [[ -n "${DATABASE_URL:-}" ]] || export DATABASE_URL="$DATA/$(setting DATABASE_URL "$defaults" | sed 's|^\.data/||')"
  [[ -n "${OUTBOX_DIR:-}" ]] || export OUTBOX_DIR="$DATA/$(setting OUTBOX_DIR "$defaults" | sed 's|^\.data/||')"
fi
mkdir -p "$DATA"

# Payload encryption: a development key, made on the first start and kept
# in $DATA (git-ignored, readable by this user only), so a dev run encrypts
# its histories as production does and the UI decodes them through the
# codec server below. An explicit PAYLOAD_ENCRYPTION_KEYS (or
# PAYLOAD_ENCRYPTION=off) wins.
if [[ -z "${PAYLOAD_ENCRYPTION_KEYS:-}" && "${PAYLOAD_ENCRYPTION:-on}" != off ]]; then
  keyfile="$DATA/payload-keys"
  if [[ ! -s "$keyfile" ]]; then
    (umask 077 && printf 'dev-%s:%s\n' "$(date -u +%Y%m%d)" "$(head -c 32 /dev/urandom | base64)" >"$keyfile")
    echo "[run] created a development payload key in $keyfile"
  fi
  PAYLOAD_ENCRYPTION_KEYS="$(<"$keyfile")"
  export PAYLOAD_ENCRYPTION_KEYS
fi
export CODEC_ADDR="${CODEC_ADDR:-127.0.0.1:8081}"
codec_url="http://$CODEC_ADDR"
# The UI calls the codec server from the browser: allow its origin.
export CODEC_CORS_ORIGINS="${CODEC_CORS_ORIGINS:-http://localhost:$UI_PORT,http://127.0.0.1:$UI_PORT}"

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

if [[ -n "${TEMPORAL_ADDRESS:-}" ]] && healthy "$TEMPORAL_ADDRESS"; then
  echo "[run] using the Temporal server at $TEMPORAL_ADDRESS"
else
  export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
  port="${TEMPORAL_ADDRESS##*:}"
  start temporal "$BIN/temporal" server start-dev \
    --ip 127.0.0.1 --port "$port" --ui-port "$UI_PORT" \
    --db-filename "$DATA/temporal.db" --log-level warn --ui-codec-endpoint "$codec_url"
  for _ in $(seq 1 120); do
    healthy "$TEMPORAL_ADDRESS" && break
    sleep 0.5
  done
  healthy "$TEMPORAL_ADDRESS" || { echo "[run] Temporal did not become healthy"; exit 1; }
fi
# The workflows upsert these; Temporal refuses unregistered ones. The CLI
# takes the namespace from TEMPORAL_NAMESPACE as the worker does.
"$BIN/worker" -search-attributes | while IFS== read -r name type; do
  # Fails harmlessly when the attribute exists already.
  "$BIN/temporal" operator search-attribute create --address "$TEMPORAL_ADDRESS" \
    --name "$name" --type "$type" >/dev/null 2>&1 || true
done

# Didit's API: with no key of a real account, a fake of it (cmd/didit-fake)
# serves decisions and the delivery log, so decision fetch works with no
# account, and creates sessions whose url is a page of its own where you
# pick what the user does. A real DIDIT_API_KEY (and DIDIT_API_URL) wins.
if [[ -z "${DIDIT_API_KEY:-}" ]]; then
  fake_addr="${DIDIT_FAKE_ADDR:-127.0.0.1:8099}"
  export DIDIT_API_KEY="dev-didit-api-key"
  export DIDIT_API_URL="http://$fake_addr"
  # The Didit workflow sessions are created on (the worker's
  # DIDIT_WORKFLOW_ID, for kyc.StartVerification): the fake's own, unless
  # DIDIT_WORKFLOW_ID names another, which the fake then knows; it reads
  # the variable, and -config prints what it makes of it.
  DIDIT_WORKFLOW_ID="$(setting workflows "$("$BIN/didit-fake" -config)")"
  export DIDIT_WORKFLOW_ID
  # It signs its redeliveries with the first of DIDIT_WEBHOOK_SECRETS,
  # read from the environment.
  start didit-fake "$BIN/didit-fake" -addr "$fake_addr" -key "$DIDIT_API_KEY" \
    -receiver "http://$HTTP_ADDR/webhooks/didit"
  didit_api="$DIDIT_API_URL  (the fake Didit API, key $DIDIT_API_KEY; set DIDIT_API_KEY for the real one)"
  didit_workflow="$DIDIT_WORKFLOW_ID  (the fake's; a created session's url is its hosted page)"
  # didit-sim registers each session with the fake before its webhook, so
  # the worker's decision fetch finds what Didit would have.
  sim_flags=" -didit-api $DIDIT_API_URL -didit-api-key $DIDIT_API_KEY"
  create_hint="[run]   or create a session and open its url: curl -H 'x-api-key: $DIDIT_API_KEY' -H 'Content-Type: application/json' -d '{\"workflow_id\":\"$DIDIT_WORKFLOW_ID\",\"vendor_data\":\"user-1\"}' $DIDIT_API_URL/v3/session/"
else
  didit_api="${DIDIT_API_URL:-https://verification.didit.me}"
  didit_workflow="${DIDIT_WORKFLOW_ID:-unset (DIDIT_WORKFLOW_ID: your published Didit workflow, to create sessions)}"
  sim_flags=""
  create_hint=""
fi

if [[ -n "${PAYLOAD_ENCRYPTION_KEYS:-}" ]]; then
  start codec-server "$BIN/codec-server"
fi
start worker "$BIN/worker"
start starter "$BIN/starter"

for _ in $(seq 1 100); do
  "$BIN/starter" -healthcheck 2>/dev/null && break
  sleep 0.2
done

# What the starter and the worker run with, as they report it (passwords
# redacted).
starter_settings="$("$BIN/starter" -config)"
worker_settings="$("$BIN/worker" -config)"
addr="$(setting HTTP_ADDR "$starter_settings")"
hooks="$(setting HOOK_WORKFLOWS "$worker_settings")"
case "$addr" in
  :*) addr="localhost$addr" ;;
  0.0.0.0:* | "[::]:"*) addr="localhost:${addr##*:}" ;;
esac
if smtp="$(setting SMTP_URL "$worker_settings")" && [[ -n "$smtp" ]]; then
  mail="$smtp"
else
  mail="$(setting OUTBOX_DIR "$worker_settings")  (SMTP_URL unset: one .eml file per message)"
fi

cat <<MSG
[run] diditflow is up
[run]   webhook endpoint  http://$addr/webhooks/didit
[run]   webhook secret    $secret_shown
[run]   Temporal UI       http://localhost:$UI_PORT  (workflow IDs: didit-session-<session_id>; payloads decoded by the codec server)
[run]   codec server      $codec_url  (CLI: temporal workflow show -w <id> --codec-endpoint $codec_url)
[run]   records           $(setting DATABASE_URL "$worker_settings")
[run]   mail              $mail
[run]   Didit API         $didit_api
[run]   Didit workflow    $didit_workflow
[run]   hooks             ${hooks:-none  (HOOK_WORKFLOWS=OnKYCEvent@onboarding make run, for examples/onboarding)}
[run] next: send a verification, then look at the UI, the records and the mail:
[run]   go run ./cmd/didit-sim$sim_flags -scenario approved        (or declined-aml, in-review-then-approved, kyc-expired, …)
${create_hint:+$create_hint
}[run] Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "[run] a component exited; stopping the rest"
stop 1
