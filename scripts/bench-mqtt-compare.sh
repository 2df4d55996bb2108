#!/usr/bin/env bash
# Runs the reference `shardline bench mqtt` scenarios against local brokers and prints one line
# per scenario. Brokers (arguments, default "mosquitto aedes"):
#   shardline            a fresh single node from dist/ (run `npm run build` first), fsync durability;
#                        SHARDLINE_ARGS adds start flags, e.g. "--max-inflight 256"
#   mosquitto            started here on a free 127.0.0.1 port (persistence off, defaults otherwise)
#   aedes                scripts/aedes-server.mjs started here on a free port
#   NAME=URL=PID         an already running broker, e.g. shardline=mqtt://127.0.0.1:1883=4242
# Environment: DURATION (measured seconds per scenario, default 10), WORKERS (default: the
# bench default), SCENARIOS (names to run, default "idle10k fanin-qos0 fanin-qos1 fanout": the
# memory scenario first, on a fresh broker; also latency-qos0 and latency-qos1: fan-in at a
# fixed RATE, default 20000 msg/s, where latency is not just queueing; latency-1k-qos1: 1 KiB
# QoS 1 at 5000 msg/s, 1 publisher, 1 subscriber), MOSQUITTO_CONF (extra mosquitto.conf lines, e.g.
# $'max_inflight_messages 0\nmax_queued_messages 0'), BROKER_CPUS and TOOL_CPUS (taskset CPU
# lists, e.g. 0 and 1: on a small machine keeps the tool's processes off the broker's core).
# Only brokers started by this script are stopped by it, by pid.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
SCENARIOS=${SCENARIOS:-"idle10k fanin-qos0 fanin-qos1 fanout"}
WORKER_FLAGS=()
if [[ -n "${WORKERS:-}" ]]; then WORKER_FLAGS=(--workers "$WORKERS"); fi
BROKER_PIN=()
TOOL_PIN=()
if [[ -n "${BROKER_CPUS:-}" ]]; then BROKER_PIN=(taskset -c "$BROKER_CPUS"); fi
if [[ -n "${TOOL_CPUS:-}" ]]; then TOOL_PIN=(taskset -c "$TOOL_CPUS"); fi
SCRATCH=$(mktemp -d)
STARTED=()

cleanup() {
  for pid in "${STARTED[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

free_port() {
  node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

wait_port() {
  for _ in $(seq 100); do
    if node -e "const c=require('net').connect($1,'127.0.0.1');c.on('connect',()=>process.exit(0));c.on('error',()=>process.exit(1))"; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}

# Sets BROKER_URL and BROKER_PID.
start_broker() {
  case "$1" in
    mosquitto)
      local port
      port=$(free_port)
      printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n%s\n' "$port" "${MOSQUITTO_CONF:-}" >"$SCRATCH/mosquitto-$port.conf"
      "${BROKER_PIN[@]}" mosquitto -c "$SCRATCH/mosquitto-$port.conf" >"$SCRATCH/mosquitto-$port.log" 2>&1 &
      BROKER_PID=$!
      STARTED+=("$BROKER_PID")
      wait_port "$port"
      BROKER_URL="mqtt://127.0.0.1:$port"
      ;;
    shardline)
      # A fresh single node from the build (npm run build), on a new data directory.
      local port
      port=$(free_port)
      "${BROKER_PIN[@]}" node dist/cli/main.js start --data-dir "$SCRATCH/shardline-$port" --mqtt-port "$port" --grpc-port 0 --log-level warn ${SHARDLINE_ARGS:-} >"$SCRATCH/shardline-$port.log" 2>&1 &
      BROKER_PID=$!
      STARTED+=("$BROKER_PID")
      wait_port "$port"
      BROKER_URL="mqtt://127.0.0.1:$port"
      ;;
    aedes)
      "${BROKER_PIN[@]}" node scripts/aedes-server.mjs 0 >"$SCRATCH/aedes.out" &
      STARTED+=("$!")
      for _ in $(seq 100); do [[ -s "$SCRATCH/aedes.out" ]] && break; sleep 0.1; done
      BROKER_PID=$(jq -r .pid "$SCRATCH/aedes.out")
      BROKER_URL="mqtt://127.0.0.1:$(jq -r .port "$SCRATCH/aedes.out")"
      ;;
    *=*=*)
      # A running broker: pinned by whoever started it.
      BROKER_URL=$(cut -d= -f2 <<<"$1")
      BROKER_PID=$(cut -d= -f3 <<<"$1")
      ;;
    *)
      echo "unknown broker $1 (shardline, mosquitto, aedes or NAME=URL=PID)" >&2
      exit 2
      ;;
  esac
}

scenario_flags() {
  case "$1" in
    fanin-qos0) echo "--pubs 8 --subs 1 --qos 0 --size 64 --duration $DURATION" ;;
    fanin-qos1) echo "--pubs 8 --subs 1 --qos 1 --size 64 --duration $DURATION" ;;
    fanout) echo "--pubs 1 --subs 64 --qos 0 --size 64 --rate 2000 --duration $DURATION" ;;
    idle10k) echo "--pubs 0 --subs 0 --conns 10000 --duration 1 --warmup 0" ;;
    latency-qos0) echo "--pubs 8 --subs 1 --qos 0 --size 64 --rate ${RATE:-20000} --duration $DURATION" ;;
    latency-qos1) echo "--pubs 8 --subs 1 --qos 1 --size 64 --rate ${RATE:-20000} --duration $DURATION" ;;
    latency-1k-qos1) echo "--pubs 1 --subs 1 --qos 1 --size 1024 --rate 5000 --duration $DURATION" ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
  esac
}

printf '%-10s %-11s %10s %10s %9s %9s %8s %8s %6s %9s %6s %9s %8s\n' broker scenario sent/s recv/s p50ms p99ms lost broker% tool% busiest% loop% KiB/conn peakMiB
stop_broker() {
  case "$1" in
    mosquitto | aedes | shardline)
      kill -TERM "$BROKER_PID" 2>/dev/null || true
      wait "$BROKER_PID" 2>/dev/null || true
      ;;
  esac
}

for broker in ${*:-mosquitto aedes}; do
  name=${broker%%=*}
  for scenario in $SCENARIOS; do
    # A fresh broker per scenario: memory figures start clean and one crash spoils one line.
    start_broker "$broker"
    flags=$(scenario_flags "$scenario")
    # shellcheck disable=SC2086
    echo "# ${TOOL_PIN[*]:-}${TOOL_PIN[*]:+ }node --import tsx cli/main.ts bench mqtt --url $BROKER_URL $flags --broker-pid $BROKER_PID ${WORKER_FLAGS[*]:-}" >&2
    # shellcheck disable=SC2086
    if ! "${TOOL_PIN[@]}" node --import tsx cli/main.ts bench mqtt --url "$BROKER_URL" $flags --broker-pid "$BROKER_PID" "${WORKER_FLAGS[@]}" --json >"$SCRATCH/report.json"; then
      echo "# $name $scenario: the bench failed or reported errors (see above)" >&2
    fi
    if [[ ! -s "$SCRATCH/report.json" ]]; then stop_broker "$broker"; continue; fi
    jq -r --arg b "$name" --arg s "$scenario" '[$b, $s,
        (.sent.perSecond|floor), (.received.perSecond|floor),
        (.latencyMs.p50*1000|round/1000), (.latencyMs.p99*1000|round/1000),
        .received.lost, (.broker.cpuPercentOfCore // 0 | floor),
        (.tool.cpuPercentOfCore|floor), (.tool.busiestProcessPercent|floor), (.tool.busiestWorkerLoopPercent|floor),
        ((.broker.perIdleConnectionBytes // 0) / 1024 * 100 | round / 100),
        ((.broker.rssPeakBytes // .broker.rssAfterIdleBytes // 0) / 1048576 | floor)] | @tsv' "$SCRATCH/report.json" |
      awk -F'\t' '{ printf "%-10s %-11s %10s %10s %9s %9s %8s %8s %6s %9s %6s %9s %8s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13 }'
    stop_broker "$broker"
  done
done
