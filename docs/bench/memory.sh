#!/usr/bin/env bash
# Resident memory per `serve` node with ACC accounts: one node, then three (issue 12).
# Build first: CGO_ENABLED=0 go build -o /tmp/mem/creditledger ./cmd/creditledger (repository root).
# Each phase: fresh data dirs, `bench` sets up ACC accounts (a 1,000-credit license bought and
# activated each, a PAYG contract on every tenth) and then sends CMDS commands of its mix (35 %
# allocations, 25 % releases, purchases, switches, ...); wait until every node's projections
# reached the stream head; record VmRSS/VmHWM and the Go heap (from /metrics); after IDLE s
# (the runtime's periodic GC and scavenger have run) record again; restart one node (SIGTERM,
# so it snapshots first) and record after it loaded from the snapshots. Results: $W/memory.txt;
# live-heap profiles (--pprof-listen, taken after the other figures) $W/heap-*.pb.gz: go tool pprof -top FILE.
set -u
B=${B:-/tmp/mem/creditledger}; W=${W:-/tmp/memrun}
ACC=${ACC:-100000}; CMDS=${CMDS:-100000}; CLIENTS=${CLIENTS:-128}; IDLE=${IDLE:-130}
# PHASES="one three" (default), or only one of them.
rm -rf "$W"; mkdir -p "$W"
OUTF=$W/memory.txt
log() { echo "$(date +%T) $*" | tee -a "$OUTF"; }
{ nproc; free -m; uname -a; git rev-parse --short HEAD 2>/dev/null; } > "$W/machine.txt"
httpget() { # port path: body of GET http://127.0.0.1:port/path
  exec 3<>/dev/tcp/127.0.0.1/$1 || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3; sed '1,/^\r$/d' <&3; exec 3>&-; }
ready() { for _ in $(seq 1 900); do httpget $1 /readyz 2>/dev/null | grep -q '"ok":true' && return 0; sleep 0.2; done; return 1; }
caught_up() { # port...: until every node's projections are at the stream head (lag 0) and the head is still
  local prev=""
  for _ in $(seq 1 1200); do
    local ok=1 heads=""
    for p in "$@"; do r=$(httpget $p /readyz 2>/dev/null)
      echo "$r" | grep -q '"lag_events":0[,}]' || ok=0; heads="$heads $(echo "$r" | sed -n 's/.*"head":\([0-9]*\).*/\1/p')"; done
    [ $ok = 1 ] && [ "$heads" = "${prev:-}" ] && { log "caught up, head$heads"; return 0; }
    prev=$heads; sleep 0.5
  done; log "not caught up:$heads"; return 1; }
held() { # log: partitions the node holds, from its log (a take-over logs the total held, a hand-over the partitions dropped)
  awk '/partitions taken over|partitions held at start/ {match($0, /"partitions":[0-9]+/); h=substr($0, RSTART+13, RLENGTH-13)+0}
       /dropped the accounts of partitions handed over/ {match($0, /"partitions":[0-9]+/); h-=substr($0, RSTART+13, RLENGTH-13)}
       END {print h+0}' "$1"; }
settled() { # node: until it holds as many partitions as before its restart and no node has
  # loaded a writer or dropped handed-over accounts for 10 s (the others load twice: when the node
  # leaves and when it takes its partitions back), at most 300 s
  local want got n last="" same=0
  want=$(held $W/n$1-before-restart.log)
  for _ in $(seq 1 600); do
    got=$(held $W/n$1.log)
    n=$(cat $W/n[0-9].log | grep -c 'writer loaded\|dropped the accounts')
    if [ "$n" = "$last" ]; then same=$((same+1)); else same=0; last=$n; fi
    [ "$got" = "$want" ] && [ $same -ge 20 ] && { log "node $1 holds $got partitions again; settled"; return 0; }
    sleep 0.5
  done; log "not settled: node $1 holds $got of $want partitions"; return 1; }
metric() { awk -v m="$2" '$1==m {printf "%.0f", $2/1048576}' "$1"; }
mem() { # label port:pid...
  local label=$1; shift
  for pp in "$@"; do port=${pp%%:*}; pid=${pp##*:}; f=$W/metrics-$label-$port.txt
    httpget $port /metrics > "$f"
    rss=$(awk '/^VmRSS/{printf "%.0f", $2/1024}' /proc/$pid/status); hwm=$(awk '/^VmHWM/{printf "%.0f", $2/1024}' /proc/$pid/status)
    [ "${PROF:-1}" = 1 ] && curl -s "http://127.0.0.1:$((port+100))/debug/pprof/heap?gc=1" -o "$W/heap-$label-$port.pb.gz" # live heap, after a GC
    log "$label node:$port rss_mib=$rss hwm_mib=$hwm heap_alloc_mib=$(metric $f go_memstats_heap_alloc_bytes) heap_inuse_mib=$(metric $f go_memstats_heap_inuse_bytes) next_gc_mib=$(metric $f go_memstats_next_gc_bytes) go_sys_mib=$(metric $f go_memstats_sys_bytes) heap_released_mib=$(metric $f go_memstats_heap_released_bytes) writer_head=$(awk '$1=="creditledger_writer_head_position"{print $2}' $f)"
  done; }
start() { # i cluster?  -> PID_i
  local i=$1; shift
  $B serve --data-dir $W/d$i --nats-listen 127.0.0.1:437$i --http-listen 127.0.0.1:818$i --pprof-listen 127.0.0.1:828$i "$@" >> "$W/n$i.log" 2>&1 &
  eval "PID_$i=$!"; }
bench() { # name urls
  log "bench $1: $ACC accounts, $CMDS commands, $CLIENTS clients"
  $B bench --nats-url "$2" --accounts $ACC --clients $CLIENTS --commands $CMDS --lag-for 1s --raw-for 1s \
    --json "$W/bench-$1.json" > "$W/bench-$1.txt" 2>&1 || log "bench $1 failed: $(tail -3 $W/bench-$1.txt)"
  log "bench $1 done: $(grep -iE 'accepted|events' $W/bench-$1.txt | head -3 | tr -s ' ' | tr '\n' ';')"; }

if [ "${PHASES:-one three}" != "${PHASES#*one}" ]; then
log "one node"
start 1; ready 8181 || log "node 1 not ready"
bench one nats://127.0.0.1:4371
caught_up 8181; mem one-loaded 8181:$PID_1
sleep $IDLE; mem one-idle 8181:$PID_1
kill -TERM $PID_1; wait $PID_1
start 1; ready 8181 || log "node 1 not ready after restart"
caught_up 8181; mem one-restarted 8181:$PID_1
grep -h '"writer loaded"' $W/n1.log | tail -1 | cut -c1-400 >> "$OUTF"
sleep $IDLE; mem one-restarted-idle 8181:$PID_1
kill -TERM $PID_1; wait $PID_1; rm -rf $W/d1; mv $W/n1.log $W/one.log
fi

if [ "${PHASES:-one three}" != "${PHASES#*three}" ]; then

log "three nodes"
R=nats://127.0.0.1:6371,nats://127.0.0.1:6372,nats://127.0.0.1:6373
URLS=nats://127.0.0.1:4371,nats://127.0.0.1:4372,nats://127.0.0.1:4373
cl() { echo --cluster-name mem --cluster-listen 127.0.0.1:637$1 --server-name m$1 --routes $R; }
for i in 1 2 3; do start $i $(cl $i); done
for i in 1 2 3; do ready 818$i || log "node $i not ready"; done
bench three $URLS
caught_up 8181 8182 8183; mem three-loaded 8181:$PID_1 8182:$PID_2 8183:$PID_3
sleep $IDLE; mem three-idle 8181:$PID_1 8182:$PID_2 8183:$PID_3
kill -TERM $PID_3; wait $PID_3; mv $W/n3.log $W/n3-before-restart.log
start 3 $(cl 3); ready 8183 || log "node 3 not ready after restart"
settled 3
caught_up 8181 8182 8183; mem three-restarted 8181:$PID_1 8182:$PID_2 8183:$PID_3
grep -hE 'partitions (held|taken)|"writer loaded"' $W/n3.log | tail -3 | cut -c1-400 >> "$OUTF"
sleep $IDLE; mem three-restarted-idle 8181:$PID_1 8182:$PID_2 8183:$PID_3
for i in 1 2 3; do eval "kill -TERM \$PID_$i"; done; wait
fi
if command -v python3 > /dev/null && command -v go > /dev/null; then # live heap by owner: docs/bench/heapsplit.py
  for f in $W/heap-*.pb.gz; do echo "== $(basename $f)"; go tool pprof -raw $f 2>/dev/null | python3 "$(dirname "$0")/heapsplit.py"; done > $W/heapsplit.txt
fi
log done
