#!/usr/bin/env bash
# Build first: CGO_ENABLED=0 go build -o devrun/creditledger ./cmd/creditledger. Load speed of one serve node: fill, stop, drop writer snapshots, start, print "writer loaded".
set -u
B=${B:-$PWD/devrun/creditledger}; D=/tmp/ls; rm -rf $D; mkdir -p $D
ready() { for _ in $(seq 1 600); do
    if exec 3<>/dev/tcp/127.0.0.1/$1 2>/dev/null; then printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3; read -r line <&3; exec 3>&-
      case "$line" in *" 200"*) return 0;; esac; fi; sleep 0.2; done; return 1; }
$B serve --data-dir $D/data --nats-listen 127.0.0.1:4290 --http-listen 127.0.0.1:8290 > $D/a.log 2>&1 & P=$!
ready 8290
$B bench --nats-url nats://127.0.0.1:4290 --accounts 20000 --clients 64 --duration 8s --lag-for 1s --raw-for 1s > $D/bench.txt 2>&1
kill $P; wait $P
ls $D/data; rm -rf $D/data/snapshots
$B serve --data-dir $D/data --nats-listen 127.0.0.1:4290 --http-listen 127.0.0.1:8290 > $D/b.log 2>&1 & P=$!
ready 8290; kill $P; wait $P
grep -h "writer loaded" $D/b.log | cut -c1-300
