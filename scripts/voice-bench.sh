#!/usr/bin/env bash
# Voice load benchmark: talky-mock (fixed latencies) + talky serve + talky-loadgen.
# Usage: scripts/voice-bench.sh [CALLS] [SECONDS]   (extra talky-loadgen flags in LOADGEN_ARGS,
#        e.g. LOADGEN_ARGS="--caller-wav caller.wav")
# Builds release binaries, runs everything on loopback in a temp data dir, prints the
# loadgen report: server-side J1/J2 numbers read back through GET /calls/{id}/metrics and
# the callers' client-side view. Latencies of the mocks are subtracted to give the
# server-added part (see `talky-loadgen --help` for which subtraction applies where).
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS="${1:-50}"
SECONDS_PER_CALL="${2:-30}"
STT_MS=0 LLM_MS=100 TTS_MS=50 END_SILENCE_MS=500 TURN_EVERY_SECS=8
# talky-mock hands out one --transcript per caller turn from a queue shared by all calls;
# an empty transcript gets no reply, so give it one line per turn the callers will speak.
TRANSCRIPTS=()
for _ in $(seq $((CALLS * (SECONDS_PER_CALL / TURN_EVERY_SECS + 1)))); do
  TRANSCRIPTS+=(--transcript "Yes, tell me more.")
done
cargo build --release -q -p talky-server --bin talky
cargo build --release -q -p talky-testkit --bin talky-mock --bin talky-loadgen
DIR="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DIR"' EXIT
./target/release/talky-mock --listen 127.0.0.1:9100 --stt-latency-ms $STT_MS --llm-ttft-ms $LLM_MS \
  --tts-ttfb-ms $TTS_MS --stt-end-silence-ms $END_SILENCE_MS --tts-ms-per-char 30 \
  "${TRANSCRIPTS[@]}" >"$DIR/mock.log" 2>&1 &
TALKY_DATA_DIR="$DIR/data" TALKY_LISTEN=127.0.0.1:8099 \
TALKY_STT__BASE_URL=ws://127.0.0.1:9100 TALKY_STT__API_KEY=test-key \
TALKY_LLM__BASE_URL=http://127.0.0.1:9100/v1 TALKY_LLM__API_KEY=test-key \
TALKY_TTS__BASE_URL=http://127.0.0.1:9100 TALKY_TTS__API_KEY=test-key TALKY_TTS__VOICE_ID=v1 \
RUST_LOG=warn ./target/release/talky serve >"$DIR/talky.log" 2>&1 &
TALKY_PID=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:8099/health >/dev/null && break; sleep 0.2; done
API=http://127.0.0.1:8099/api/v1
curl -sf -X POST $API/auth/register -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","business_name":"Bench","plan_id":"enterprise"}' >/dev/null
for _ in $(seq 50); do ls "$DIR"/data/outbox/*.eml >/dev/null 2>&1 && break; sleep 0.1; done
LINK_TOKEN=$(python3 - "$DIR" <<'PY'
import email, glob, re, sys
m = email.message_from_bytes(open(sorted(glob.glob(sys.argv[1] + "/data/outbox/*.eml"))[-1], "rb").read())
for p in m.walk():
    if p.get_content_type() == "text/plain":
        print(re.search(r"token=([A-Za-z0-9_-]+)", p.get_payload(decode=True).decode()).group(1))
PY
)
TOKEN=$(curl -sf -X POST $API/auth/verify -H 'content-type: application/json' -d "{\"token\":\"$LINK_TOKEN\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
CAMPAIGN=$(curl -sf -X POST $API/campaigns -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"name":"Bench","system_prompt":"You are Sam from Acme. Be brief.","agent_name":"Sam","company_name":"Acme","opener":"Hi, this is Sam from Acme. Got a minute?"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["campaign"]["id"])')
./target/release/talky-loadgen --base-url http://127.0.0.1:8099 --token "$TOKEN" --campaign "$CAMPAIGN" \
  --calls "$CALLS" --duration-secs "$SECONDS_PER_CALL" --turn-every-secs $TURN_EVERY_SECS \
  --end-silence-ms $END_SILENCE_MS \
  --mock-latency-ms $((STT_MS + LLM_MS + TTS_MS)) --server-pid $TALKY_PID ${LOADGEN_ARGS:-}
