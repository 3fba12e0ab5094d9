# Sourced by the bench scripts: start three `serve` nodes on loopback and wait until they are
# ready. Needs B (the binary).

# ready PORT: GET /readyz on 127.0.0.1:PORT until it answers 200 (at most 120 s).
ready() { for _ in $(seq 1 600); do
    if exec 3<>/dev/tcp/127.0.0.1/$1 2>/dev/null; then printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3; read -r line <&3; exec 3>&-
      case "$line" in *" 200"*) return 0;; esac; fi; sleep 0.2; done; return 1; }

# start_three D HTTP DATA LOGS: nodes n1-n3 of cluster "cl", routes on 127.0.0.1:62D1-3, NATS on
# 42D1-3, HTTP on HTTP1-3 (HTTP is a port's first digits: 808 gives 8081-8083), data in a fresh
# DATA1-3, logs in LOGS/n1-3.log. Sets R, URLS and PIDS (the node i's process is PIDS[i-1]).
start_three() {
  local d=$1 http=$2 data=$3 logs=$4 i
  R=nats://127.0.0.1:62${d}1,nats://127.0.0.1:62${d}2,nats://127.0.0.1:62${d}3
  URLS=nats://127.0.0.1:42${d}1,nats://127.0.0.1:42${d}2,nats://127.0.0.1:42${d}3
  PIDS=()
  for i in 1 2 3; do rm -rf "$data$i"
    "$B" serve --cluster-name cl --cluster-listen 127.0.0.1:62$d$i --server-name n$i --routes $R \
      --data-dir "$data$i" --nats-listen 127.0.0.1:42$d$i --http-listen 127.0.0.1:$http$i > "$logs/n$i.log" 2>&1 &
    PIDS+=($!); done
  for i in 1 2 3; do ready $http$i 2>/dev/null || echo "node $i not ready"; done
}
