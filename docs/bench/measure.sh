#!/usr/bin/env bash
# end-of-session figures on this 2-core machine: one node (embedded) and three serve nodes
set -u
B=$PWD/devrun/creditledger; O=${O:-/tmp/measure}; rm -rf $O; mkdir -p $O
run() { name=$1; shift; echo "== $name $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"; $B bench "$@" --json $O/$name.json > $O/$name.txt 2>&1
  grep -E 'closed-loop|batch of 1000 |accepted  |answered \(|latency|projection lag|errors|of_clients|_vs_atomic_batch_1000|CPU per' $O/$name.txt | grep -v '^{' ; }
run one64 --accounts 10000 --clients 64 --duration 15s --lag-for 5s --raw-for 2s
run one64ar --accounts 10000 --clients 64 --duration 15s --lag-for 5s --raw-for 2s --mix allocate-release
run one1024 --accounts 10000 --clients 1024 --duration 15s --lag-for 5s --raw-for 2s
. "$(dirname "$0")/threenodes.sh"
start_three 4 810 /tmp/msn "$O"
CPU_OF=$(IFS=,; echo "${PIDS[*]}") # the three nodes' CPU counts too: a CPU bound for three nodes
run three64 --nats-url $URLS --cpu-of $CPU_OF --accounts 10000 --clients 64 --duration 15s --lag-for 5s --raw-for 2s
run three64ar --nats-url $URLS --cpu-of $CPU_OF --accounts 10000 --clients 64 --duration 15s --lag-for 5s --raw-for 2s --mix allocate-release --seed 2
kill "${PIDS[@]}"; wait
