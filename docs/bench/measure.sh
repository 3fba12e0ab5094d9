#!/usr/bin/env bash
# end-of-session figures on this 2-core machine: one node (embedded) and three serve nodes
set -u
B=$PWD/devrun/creditledger; O=${O:-/tmp/measure}; rm -rf $O; mkdir -p $O
run() { name=$1; shift; echo "== $name $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"; $B bench "$@" --json $O/$name.json > $O/$name.txt 2>&1
  grep -E 'closed-loop|batch of 1000 |accepted  |answered \(|latency|projection lag|errors|of_clients|_vs_atomic_batch_1000|CPU per' $O/$name.txt | grep -v '^{' ; }
run one64 --accounts 10000 --clients 64 --duration 15s --lag-for 5s --raw-for 2s
run one64ar --accounts 10000 --clients 64 --duration 15s --lag-for 5s --raw-for 2s --mix allocate-release
run one1024 --accounts 10000 --clients 1024 --duration 15s --lag-for 5s --raw-for 2s
ready() { for _ in $(seq 1 600); do
    if exec 3<>/dev/tcp/127.0.0.1/$1 2>/dev/null; then printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3; read -r line <&3; exec 3>&-
      case "$line" in *" 200"*) return 0;; esac; fi; sleep 0.2; done; return 1; }
R=nats://127.0.0.1:6241,nats://127.0.0.1:6242,nats://127.0.0.1:6243
URLS=nats://127.0.0.1:4241,nats://127.0.0.1:4242,nats://127.0.0.1:4243
PIDS=()
for i in 1 2 3; do rm -rf /tmp/msn$i
  $B serve --cluster-name ms --cluster-listen 127.0.0.1:624$i --server-name n$i --routes $R \
    --data-dir /tmp/msn$i --nats-listen 127.0.0.1:424$i --http-listen 127.0.0.1:810$i > "$O/n$i.log" 2>&1 &
  PIDS+=($!); done
for i in 1 2 3; do ready 810$i 2>/dev/null || echo "node $i not ready"; done
run three64 --nats-url $URLS --accounts 10000 --clients 64 --duration 15s --lag-for 5s --raw-for 2s
run three64ar --nats-url $URLS --accounts 10000 --clients 64 --duration 15s --lag-for 5s --raw-for 2s --mix allocate-release --seed 2
kill "${PIDS[@]}"; wait
