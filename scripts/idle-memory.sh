#!/usr/bin/env bash
# Memory of idle MQTT connections in a Shardline broker (docs/benchmarks.md, "Idle connection
# memory: where each byte goes"). Starts `node ROOT/dist/cli/main.js start` on a scratch data
# directory and a free loopback port, opens 200 connections and closes them (warm-up), then:
#   RSS: idle broker -> +N idle connections -> +N/2 more (no heap snapshot before these readings)
#   heap: a snapshot with 1.5 N connected, the last N/2 closed, a second snapshot; their
#         difference per connection, by constructor (scripts/heap-diff.mjs)
# Usage: scripts/idle-memory.sh ROOT N 4|5 clean|persistent      (ROOT: a checkout with dist/ built)
# Needs ulimit -n above 1.5 N + a few hundred. Only the processes it starts are stopped, by pid.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$1 N=$2 V=$3 MODE=$4
W=$(mktemp -d)
cd "$W"
PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
node --heapsnapshot-signal=SIGUSR2 "$ROOT/dist/cli/main.js" start --data-dir "$W/data" --mqtt-port "$PORT" --grpc-port 0 --admin-port 0 --log-level warn >broker.log 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null || true' EXIT
for _ in $(seq 300); do node -e "const c=require('net').connect($PORT,'127.0.0.1');c.on('connect',()=>process.exit(0));c.on('error',()=>process.exit(1))" && break; sleep 0.2; done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$BROKER/status"; }
fds() { ls "/proc/$BROKER/fd" | wc -l; }
clients() { # N MODE PREFIX OUT: starts clients in the background, waits until they are connected
  node "$HERE/idle-clients.mjs" "$PORT" "$1" "$V" "$2" "$3" >"$4" &
  CLIENTS=$!
  while ! grep -q ready "$4" 2>/dev/null; do sleep 0.2; done
}
snapshot() { # waits for snapshot number $1 to be complete (its size stable for 3 s)
  kill -USR2 "$BROKER"
  while [ "$(ls ./*.heapsnapshot 2>/dev/null | wc -l)" -lt "$1" ]; do sleep 0.5; done
  local file a=-1 b=0
  file=$(ls -tr ./*.heapsnapshot | tail -1)
  while [ "$a" != "$b" ]; do a=$(stat -c %s "$file"); sleep 3; b=$(stat -c %s "$file"); done
}
clients 200 "$MODE" warm warm.out; kill "$CLIENTS"; wait "$CLIENTS" 2>/dev/null || true; sleep 3
RSS0=$(rss)
clients "$N" "$MODE" a a.out; A=$CLIENTS; sleep 3
RSS1=$(rss)
clients $((N / 2)) "$MODE" b b.out; B=$CLIENTS; sleep 3
RSS2=$(rss)
snapshot 1
FD1=$(fds)
kill "$B"; wait "$B" 2>/dev/null || true
while [ "$(fds)" -gt $((FD1 - N / 2 + 10)) ]; do sleep 0.5; done
sleep 10 # a closed socket is kept 2 s for a lingering peer
snapshot 2
kill "$A"; wait "$A" 2>/dev/null || true
kill -TERM "$BROKER"; wait "$BROKER" 2>/dev/null || true
trap - EXIT
echo "connect: first $N $(cat a.out), next $((N / 2)) $(cat b.out)"
echo "RSS: idle $RSS0 kB, +$N $RSS1 kB, +$((N / 2)) more $RSS2 kB: $(((RSS1 - RSS0) * 1024 / N)) B per connection for the first $N, $(((RSS2 - RSS1) * 1024 / (N / 2))) B for the next"
set -- $(ls -tr ./*.heapsnapshot)
node --max-old-space-size=6000 "$HERE/heap-diff.mjs" "$2" "$1" $((N / 2)) 40
rm -rf "$W"
