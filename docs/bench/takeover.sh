#!/usr/bin/env bash
# Local takeover breakdown: three nodes, some load, kill -9 of one (VICTIM), time to first accepted command per account.
set -u
# Build first: CGO_ENABLED=0 go build -o devrun/creditledger ./cmd/creditledger (from the repository root).
B=${B:-$PWD/devrun/creditledger}; W=/tmp/tk; rm -rf $W; mkdir -p $W
ACC=${ACC:-20000}; DUR=${DUR:-10s}
# Each attempt waits TIMEOUT for its answer, then is retried with its command_id (a client's retry).
TIMEOUT=${TIMEOUT:-2s}
. "$(dirname "$0")/threenodes.sh"
start_three 2 808 /tmp/tkn "$W"
echo "$(date +%T) ready"
$B bench --nats-url $URLS --accounts $ACC --clients 64 --duration $DUR --lag-for 1s --raw-for 1s > "$W/bench.txt" 2>&1
echo "$(date +%T) bench done: $(grep -i 'accepted' $W/bench.txt | head -2)"
curl -s localhost:8081/metrics | grep -E '^creditledger_(stream_position|head)' | head -3
# 20 accounts funded before the kill (about a third land in the killed node's partitions): after it, an
# allocation (no id reservation: the partition takeover alone) and a purchase (also needs the
# LEDGER_IDS bucket, whose leader may have died with node 3) per account, each retried with its
# command_id until accepted.
for a in $(seq 1 20); do
  $B command purchase_license --nats-url nats://127.0.0.1:4221 --account tk-$a --license-id TK-$a --source sales --credits 100 --command-id tk-$a >/dev/null
  $B command activate_license --nats-url nats://127.0.0.1:4221 --account tk-$a --license-id TK-$a --command-id tka-$a >/dev/null
done
# VICTIM: the node killed (1-3), or "leader" for the node that leads the stream STREAM (LEDGER
# by default; go build -o devrun/streamleader ./docs/bench/streamleader first).
V=${VICTIM:-3}
if [ "$V" = leader ]; then L=$($(dirname "$B")/streamleader --nats-url $URLS --stream "${STREAM:-LEDGER}"); V=${L#n}; echo "${STREAM:-LEDGER} led by $L"; fi
S1=$(( V % 3 + 1 )); S2=$(( (V + 1) % 3 + 1 )) # the survivors, each sent half the attempts
kill -9 "${PIDS[$((V-1))]}"; T0=$(date +%s%N); echo "$(date +%T.%N) killed n$V"
# A process killed with -9 closes its sockets only after the kernel has freed its memory: until
# then a request NATS routes to its queue subscription is accepted by the socket and lost.
( for _ in $(seq 1 500); do (exec 3<>/dev/tcp/127.0.0.1/422$V) 2>/dev/null || break; sleep 0.01; done
  echo "n$V's client port refused connections $(( ($(date +%s%N) - T0) / 1000000 )) ms after the kill" ) &
TK=()
for a in $(seq 1 20); do
  ( for _ in $(seq 1 600); do
      if $B command allocate_credits --nats-url nats://127.0.0.1:422$S1 --account tk-$a --feature file_security --credits 1 --command-id tkl-$a --timeout $TIMEOUT >/dev/null 2>>"$W/attempts.txt"; then
        echo "allocate tk-$a $(( ($(date +%s%N) - T0) / 1000000 )) ms"; exit 0; fi
      sleep 0.1; done; echo "allocate tk-$a never" ) >> "$W/takeover.txt" &
  TK+=($!)
  ( for _ in $(seq 1 600); do
      if $B command purchase_license --nats-url nats://127.0.0.1:422$S2 --account tk-$a --license-id TKP-$a --source sales --credits 100 --command-id tkp-$a --timeout $TIMEOUT >/dev/null 2>>"$W/attempts.txt"; then
        echo "purchase tk-$a $(( ($(date +%s%N) - T0) / 1000000 )) ms"; exit 0; fi
      sleep 0.1; done; echo "purchase tk-$a never" ) >> "$W/takeover.txt" &
  TK+=($!); done
wait "${TK[@]}"
echo "slowest allocations (partition takeover):"; grep ^allocate "$W/takeover.txt" | sort -k3 -n | tail -3
echo "slowest purchases (takeover and the id bucket):"; grep ^purchase "$W/takeover.txt" | sort -k3 -n | tail -3
echo "failed attempts by error:"; sed -E 's/[0-9]+(\.[0-9]+)?(ms|s)\b/N/g' "$W/attempts.txt" | sort | uniq -c | sort -rn | head
kill "${PIDS[$((S1-1))]}" "${PIDS[$((S2-1))]}"; wait "${PIDS[$((S1-1))]}" "${PIDS[$((S2-1))]}"
grep -hE "taken over|lease lost|JetStream cluster new|leader|partitions held|append failed|after a gap" $W/n$S1.log $W/n$S2.log | tail -30
