#!/usr/bin/env bash
# Speed figures for issues 12 and 13 on the lent 16-core machine. Results: $OUT/all.tgz, $OUT/steps.txt.
# Build first: CGO_ENABLED=0 go build -o devrun/creditledger ./cmd/creditledger (run from the repository root).
set -u
B=$PWD/devrun/creditledger
W=/tmp/devout; OUTD=${OUT:-/tmp/devres}
S=${SCALE:-1}            # SCALE=0 for a quick local smoke test
D=15s; LAG=5s; RAW=2s; BIG=100000; DBIG=5s
if [ "$S" = 0 ]; then D=2s; LAG=1s; RAW=1s; BIG=2000; DBIG=1s; fi
rm -rf "$W"; mkdir -p "$W" "$OUTD"
pack() { tar czf "$OUTD/all.tgz" -C "$W" . ; cp "$W/steps.txt" "$OUTD/steps.txt"; }
log() { echo "$(date +%T) $*" | tee -a "$W/steps.txt"; pack; }
{ nproc; free -g; uname -a; } > "$W/machine.txt"
rss() { for p in "$@"; do awk '/VmRSS|VmHWM/{printf "%s %s kB  ", $1, $2}' /proc/$p/status; echo " pid $p"; done; }
. "$(dirname "$0")/threenodes.sh" # ready, start_three

log "single node, 64 clients"
$B bench --accounts 10000 --clients 64 --duration $D --lag-for $LAG --raw-for $RAW --json "$W/single64.json" > "$W/single64.txt" 2>&1
log "single node, 1024 clients"
$B bench --accounts 10000 --clients 1024 --duration $D --lag-for $LAG --raw-for $RAW --json "$W/single1024.json" > "$W/single1024.txt" 2>&1

log "one serve process, $BIG accounts (RSS)"
rm -rf /tmp/one; $B serve --data-dir /tmp/one --nats-listen 127.0.0.1:4230 --http-listen 127.0.0.1:8090 > "$W/one.log" 2>&1 &
ONE=$!; ready 8090 || log "single serve not ready"
$B bench --nats-url nats://127.0.0.1:4230 --accounts $BIG --clients 256 --duration $DBIG --lag-for 1s --raw-for 1s > "$W/one100k.txt" 2>&1
rss $ONE > "$W/rss_one.txt"; kill $ONE; wait $ONE

log "three nodes"
start_three 2 808 /tmp/n "$W"
log "three nodes ready"
$B bench --nats-url $URLS --accounts 10000 --clients 64 --duration $D --lag-for $LAG --raw-for $RAW --json "$W/three64.json" > "$W/three64.txt" 2>&1
rss "${PIDS[@]}" > "$W/rss_three_10k.txt"
log "three nodes, $BIG accounts (RSS)"
$B bench --nats-url $URLS --accounts $BIG --clients 256 --duration $DBIG --lag-for 1s --raw-for 1s > "$W/three100k.txt" 2>&1
rss "${PIDS[@]}" > "$W/rss_three_100k.txt"

log "kill -9 node 3"
kill -9 "${PIDS[2]}"; T0=$(date +%s%N)
TK=()
for a in $(seq 1 30); do
  ( for _ in $(seq 1 600); do
      if $B command purchase_license --nats-url nats://127.0.0.1:4221 --account tk-$a --license-id TK-$a --source sales --credits 100 --command-id tk-$a >/dev/null 2>&1; then
        echo "tk-$a $(( ($(date +%s%N) - T0) / 1000000 )) ms"; exit 0; fi
      sleep 0.1
    done; echo "tk-$a never" ) >> "$W/takeover.txt" &
  TK+=($!)
done
wait "${TK[@]}"
sort -k2 -n "$W/takeover.txt" | tail -3 >> "$W/steps.txt"
kill "${PIDS[0]}" "${PIDS[1]}"; wait "${PIDS[0]}" "${PIDS[1]}"
log done
