#!/usr/bin/env bash
# The border lab: emulate a cross-border link between two network namespaces
# (scripts/lab/linkem) and measure Strait against the alternatives with
# scripts/lab/loadgen. Needs root (namespaces, TUN), Go, and apt-get for the
# nginx Debian package (installed on first use).
#
#   scripts/lab/run.sh selftest   # emulator self-test only (~15 s)
#   scripts/lab/run.sh smoke      # one tiny scenario per contender over the emulated link (~1 min)
#   scripts/lab/run.sh link       # the link matrix: RTT x loss x congestion control x contenders x streams
#   scripts/lab/run.sh loopback   # overhead on loopback: 500 and 2000 req/s, max rate, stream TTFT and gaps
#   scripts/lab/run.sh memory     # RSS of edge and relay with 1 000 and 10 000 slow streams
#   scripts/lab/run.sh all        # selftest, link, loopback, memory
#
# Results: JSON lines in $LAB_DIR/results.jsonl (default .lab/), tables on
# stdout and in $LAB_DIR/tables.md. Every scenario is bounded (loadgen
# --duration/--timeout and `timeout 60`); everything the script started,
# namespaces included, is removed on exit, Ctrl-C or failure.
#
# Knobs: LAB_RTTS ("150 250"), LAB_LOSSES ("0 0.01 0.03"), LAB_CCS ("bbr reno"),
# LAB_CONTENDERS ("direct nginx strait-ws strait-quic"), LAB_CONCS ("1 32 256"),
# LAB_BURST (mean loss run in packets for the extra burst-loss link, 0: none; default 4),
# LAB_MEM_STREAMS ("1000 10000"), LAB_MEM_CONTENDERS ("strait-ws strait-quic"), LAB_NS (namespace
# prefix, "lab"), LAB_CTL (linkem control address, 127.0.0.1:7099).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
phase=${1:-all}
work=${LAB_DIR:-$root/.lab}
bin=$work/bin
certs=$work/certs
results=$work/results.jsonl
ns=${LAB_NS:-lab}
dom=$ns-dom
ovs=$ns-ovs
ctl=${LAB_CTL:-127.0.0.1:7099}
key=sk-lab-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')

[ "$(id -u)" = 0 ] || { echo "the lab needs root (network namespaces, TUN)"; exit 1; }
mkdir -p "$work" "$bin"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

pids=()
cleanup() {
  trap - EXIT INT TERM
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  # linkem deletes its namespaces itself; this is for a linkem that was killed hard.
  for n in "$dom" "$ovs"; do ip netns del "$n" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

echo "==> building into $bin"
go build -o "$bin/" ./cmd/strait-edge ./cmd/strait-relay ./scripts/lab/linkem ./scripts/lab/loadgen ./scripts/lab/fakesrv
if ! command -v nginx >/dev/null; then
  echo "==> installing nginx (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx >/dev/null
fi
# front-ca.pem: certificates made before the front had a CA of its own are made again
if [ ! -f "$certs/front-ca.pem" ]; then
  "$bin/strait-relay" certs --dir "$certs" --relay-dns localhost --relay-ip 10.77.0.2 --relay-ip 127.0.0.1 \
    --front-dns localhost --front-ip 127.0.0.1 --front-ip 10.77.0.2 --force >/dev/null
fi

# inns NS CMD...: run CMD in namespace NS ("-" is the root namespace).
inns() { local n=$1; shift; if [ "$n" = - ]; then "$@"; else ip netns exec "$n" "$@"; fi; }

# start NAME NS CMD...: run CMD in the background in NS, log to $work/NAME.log.
start() {
  local name=$1 n=$2; shift 2
  (cd "$work" && exec $( [ "$n" = - ] || echo ip netns exec "$n") "$@") >>"$work/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_${name//-/_}=$!"
}

stop_servers() {
  # Everything but linkem (the first pid when it runs) goes.
  local keep=${1:-0}
  for ((i=${#pids[@]}-1; i>=keep; i--)); do kill "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done
  pids=("${pids[@]:0:$keep}")
}

relay_yaml() { # listen-addr
  cat >"$work/relay.yaml" <<YAML
listen: "$1"
listen_quic: "$1"
tls: {cert: $certs/relay.pem, key: $certs/relay-key.pem, client_ca: $certs/ca.pem}
providers:
  - {name: openai, kind: openai, base_url: "http://127.0.0.1:$2", api_keys: ["fake-provider-key"]}
YAML
}

edge_yaml() { # name listen relay-addr transport
  cat >"$work/$1.yaml" <<YAML
listen: "$2"
tls: {cert: $certs/front.pem, key: $certs/front-key.pem}
tunnel:
  relays: [{address: "$3", transport: $4, server_name: localhost}]
  cert: $certs/edge.pem
  key: $certs/edge-key.pem
  ca: $certs/ca.pem
client_keys:
  - {name: lab, key: "$key"}
YAML
}

# nginx_conf NAME LISTEN UPSTREAM SCHEME CERT: one nginx tier; SCHEME https
# for the edge tier (TLS across the border), http for the relay tier.
nginx_conf() {
  local d=$work/$1
  mkdir -p "$d/tmp"
  local tls=""
  [ "$4" = https ] && tls="proxy_ssl_server_name on; proxy_ssl_name localhost; proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $certs/ca.pem; proxy_ssl_session_reuse on; proxy_ssl_protocols TLSv1.3;"
  cat >"$d/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 19000; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body; proxy_temp_path $d/tmp/proxy; fastcgi_temp_path $d/tmp/fcgi;
  uwsgi_temp_path $d/tmp/uwsgi; scgi_temp_path $d/tmp/scgi;
  upstream up { server $3; keepalive 64; }
  server {
    listen $2 ssl;
    ssl_certificate $5.pem; ssl_certificate_key $5-key.pem; ssl_protocols TLSv1.3;
    client_max_body_size 64m;
    location / {
      proxy_pass $4://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 300s;
      $tls
    }
  }
}
CONF
}

# start_stack NSDOM NSOVS RELAYADDR BIND: fake provider, relay and the
# relay-side nginx on the overseas side; two edges (WebSocket, QUIC) and the
# edge-side nginx on the domestic side. Ports are fixed and below the
# ephemeral range, so they do not meet other tests' 127.0.0.1:0 listeners.
start_stack() {
  local d=$1 o=$2 raddr=$3 fport=17900
  relay_yaml "$raddr:17444" $fport
  edge_yaml edge-ws 127.0.0.1:17443 "$raddr:17444" ws
  edge_yaml edge-quic 127.0.0.1:17445 "$raddr:17444" quic
  nginx_conf nginx-ovs "$raddr:17448" 127.0.0.1:$fport http "$certs/relay"
  nginx_conf nginx-dom 127.0.0.1:17446 "$raddr:17448" https "$certs/front"
  start fake "$o" "$bin/fakesrv" -plain 127.0.0.1:$fport -tls "$raddr:17447" -cert "$certs/front.pem" -key "$certs/front-key.pem"
  start relay "$o" "$bin/strait-relay" --log-format console --log-level warn run --config "$work/relay.yaml"
  start nginx_ovs "$o" nginx -p "$work/nginx-ovs" -c "$work/nginx-ovs/nginx.conf"
  start edge_ws "$d" "$bin/strait-edge" --log-format console --log-level warn run --config "$work/edge-ws.yaml"
  start edge_quic "$d" "$bin/strait-edge" --log-format console --log-level warn run --config "$work/edge-quic.yaml"
  start nginx_dom "$d" nginx -p "$work/nginx-dom" -c "$work/nginx-dom/nginx.conf"
  url_direct=https://$raddr:17447
  url_nginx=https://127.0.0.1:17446
  url_strait_ws=https://127.0.0.1:17443
  url_strait_quic=https://127.0.0.1:17445
  # Wait until every contender answers (tunnels up, nginx listening).
  local c
  for c in direct nginx strait-ws strait-quic; do
    local u; u=$(url_of "$c")
    for _ in $(seq 1 30); do
      inns "$d" "$bin/loadgen" run --url "$u" --ca "$certs/front-ca.pem" --key "$key" --kind unary --tokens 1 --interval 0 \
        --warmup 0 --requests 1 --timeout 5s --fail-on-error >/dev/null 2>&1 && continue 2
      sleep 0.5
    done
    echo "contender $c did not come up; logs in $work"; exit 1
  done
}

url_of() { local v="url_${1//-/_}"; echo "${!v}"; }

# lg NS LABELS LOADGEN-ARGS...: one bounded scenario, appended to $results.
lg() {
  local n=$1 labels=$2; shift 2
  inns "$n" timeout 60 "$bin/loadgen" run --ca "$certs/front-ca.pem" --key "$key" --out "$results" \
    --label "$labels" --duration 45s --timeout 50s "$@" | tail -n 1 | sed "s|^|  $labels  |" || echo "  $labels: scenario failed ($?)"
}

set_cc() { # cc: per-namespace default congestion control (new sockets only)
  for n in "$dom" "$ovs"; do inns "$n" sysctl -qw net.ipv4.tcp_congestion_control="$1"; done
}

start_link() {
  start linkem - "$bin/linkem" run --ns "$ns" --ctl "$ctl"
  for _ in $(seq 1 50); do
    "$bin/linkem" set --ctl "$ctl" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "linkem did not start: $(cat "$work/linkem.log")"; exit 1
}

header() {
  echo "==> $*"
  echo "    $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores, $(uname -r)"
}

phase_selftest() {
  header "emulator self-test (10 000 datagrams, 75 ms one way, 3 % loss each way)"
  "$bin/linkem" selftest
}

# link_matrix CONCS LOSSES RTTS CCS CONTENDERS KEEPALIVE BULK
link_matrix() {
  local concs=$1 losses=$2 rtts=$3 ccs=$4 contenders=$5 keepalive=$6 bulk=$7
  start_link
  local cc rtt loss burst c conc reqs links
  for cc in $ccs; do
    set_cc "$cc"
    start_stack "$dom" "$ovs" 10.77.0.2   # fresh sockets, so they use this cc
    links=""
    for rtt in $rtts; do for loss in $losses; do links+=" $rtt:$loss:0"; done; done
    [ "${LAB_BURST:-4}" != 0 ] && links+=" ${rtts##* }:${losses##* }:${LAB_BURST:-4}"
    for l in $links; do
      IFS=: read -r rtt loss burst <<<"$l"
      "$bin/linkem" set --ctl "$ctl" --delay "$((rtt / 2))ms" --loss "$loss" --burst "$burst" >/dev/null
      header "cc $cc, RTT ${rtt} ms, loss $loss (burst $burst)"
      for c in $contenders; do
        if [ "$c" = strait-quic ] && [ "$cc" != "${ccs%% *}" ]; then continue; fi # UDP: the TCP cc does not apply
        local ccl=$cc; [ "$c" = strait-quic ] && ccl=quic
        local labels="scenario=link,contender=$c,cc=$ccl,rtt=$rtt,loss=$loss,burst=$burst"
        for conc in $concs; do
          reqs=$conc; [ "$conc" = 1 ] && reqs=3
          lg "$dom" "$labels" --url "$(url_of "$c")" --mode fresh --concurrency "$conc" --requests "$reqs"
        done
        for conc in $keepalive; do
          lg "$dom" "$labels" --url "$(url_of "$c")" --mode keepalive --concurrency "$conc" --requests "$conc"
        done
        if [ "$bulk" = 1 ] && [ "$burst" = 0 ] && [ "$rtt" = "${rtts%% *}" ]; then
          lg "$dom" "$labels" --url "$(url_of "$c")" --mode fresh --kind bulk --concurrency 1 --requests 1 --timeout 30s
        fi
      done
    done
    stop_servers 1
  done
  stop_servers 0
}

phase_loopback() {
  header "loopback overhead (no emulated link; loadgen, edge, relay, nginx and the fake share the 2 cores)"
  start_stack - - 127.0.0.1
  local c r labels
  for c in direct strait-ws strait-quic nginx; do
    labels="scenario=loopback,contender=$c"
    for r in 500 2000; do
      lg - "$labels" --url "$(url_of "$c")" --mode keepalive --kind unary --tokens 1 --interval 0 \
        --rate "$r" --concurrency 256 --requests $((r * 10)) --duration 12s --timeout 10s
    done
    lg - "$labels,max=1" --url "$(url_of "$c")" --mode keepalive --kind unary --tokens 1 --interval 0 \
      --concurrency 64 --requests 1000000 --duration 10s --timeout 10s
    lg - "$labels" --url "$(url_of "$c")" --mode keepalive --kind stream --tokens 50 --interval 20ms \
      --concurrency 32 --requests 96
    lg - "$labels" --url "$(url_of "$c")" --mode keepalive --kind bulk --concurrency 1 --requests 3
  done
  stop_servers 0
}

phase_memory() {
  header "memory with slow streams (1 token per second), a fresh stack per run"
  local n c edgepid
  for c in ${LAB_MEM_CONTENDERS:-strait-ws strait-quic}; do
    for n in ${LAB_MEM_STREAMS:-1000 10000}; do
      start_stack - - 127.0.0.1
      edgepid=$pid_edge_ws; [ "$c" = strait-quic ] && edgepid=$pid_edge_quic
      # One connection per stream, opened over 10 s; RSS is sampled 3 s after
      # the last first token, while every stream is still open.
      lg - "scenario=memory,contender=$c" --url "$(url_of "$c")" --mode fresh --warmup 0 --ramp 10s --kind stream \
        --tokens 30 --interval 1s --concurrency "$n" --requests "$n" --rss "edge=$edgepid,relay=$pid_relay" \
        --timeout 45s --duration 45s
      stop_servers 0
    done
  done
}

phase_smoke() {
  header "smoke: one small scenario per contender over a 150 ms, 1 % loss link"
  link_matrix "8" "0.01" "150" "bbr" "${LAB_CONTENDERS:-direct nginx strait-ws strait-quic}" "" 0
}

case $phase in
  selftest) phase_selftest ;;
  smoke) LAB_BURST=0 phase_smoke ;;
  link) link_matrix "${LAB_CONCS:-1 32 256}" "${LAB_LOSSES:-0 0.01 0.03}" "${LAB_RTTS:-150 250}" "${LAB_CCS:-bbr reno}" \
    "${LAB_CONTENDERS:-direct nginx strait-ws strait-quic}" "${LAB_KEEPALIVE:-32 256}" 1 ;;
  loopback) phase_loopback ;;
  memory) phase_memory ;;
  all) phase_selftest; link_matrix "1 32 256" "0 0.01 0.03" "150 250" "bbr reno" "direct nginx strait-ws strait-quic" "32 256" 1
    phase_loopback; phase_memory ;;
  *) echo "unknown phase $phase"; exit 2 ;;
esac
[ -s "$results" ] && "$bin/loadgen" markdown "$results" >"$work/tables.md" && "$bin/loadgen" table "$results"
echo "results: $results (tables: $work/tables.md)"
