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
#   scripts/lab/run.sh doctor     # strait-edge doctor over a 150 ms, 3 % loss link (LAB_DOCTOR_RTT, LAB_DOCTOR_LOSS)
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
# LAB_COMPRESSION (the edges' tunnel compression: deflate or off), LAB_MEM_STREAMS ("1000 10000"), LAB_MEM_CONTENDERS ("strait-ws strait-quic"), LAB_MEM_PROMPT (bytes added to each memory stream's prompt: 0), LAB_NS (namespace
# prefix, "lab"), LAB_CTL (linkem control address, 127.0.0.1:7099).
# Link phase only: LAB_KEEPALIVE ("32 256"; empty: none), LAB_BULK (1: the 10 MB bulk scenario on the first RTT's
# links; 0: none; only: bulk alone, no stream scenarios), LAB_DIAG (1: after every scenario print the
# emulator's drop counters and each namespace's UDP/softnet drop counters, to tell a link's loss from
# the host's), LAB_SESSIONS (the edges' tunnel.sessions_per_relay; unset: the edge's default),
# LAB_SESSIONS_MAX and LAB_SESSIONS_TARGET (the edges' tunnel.sessions.max and .target_streams: the ceiling of
# load scaling and the streams per session it aims at; unset: the edge's defaults), LAB_SESSIONS_DIALS (the edges'
# tunnel.sessions.max_dials: extra sessions dialed at once), LAB_HEDGE (the edges'
# tunnel.hedge: auto, on or off; unset: the edge's default, auto), LAB_NOTSENT (tcp_notsent_lowat of the WebSocket tunnel's
# sockets, edge and relay, bytes; unset: the default), LAB_SLOW_START_AFTER_IDLE (0 or 1: net.ipv4.tcp_slow_start_after_idle in
# both namespaces, for every contender; unset: the kernel's default, 1), LAB_FEC (the QUIC edge's tunnel.quic_fec: off, on
# (20 data + 4 parity) or D+P, e.g. 10+3; unset: the edge's default, on; the relay always accepts both),
# LAB_SEED (the emulator's random seed, 1: the same loss positions in every run; set another, e.g. $RANDOM, to make
# repeated runs independent), LAB_LINKEM_NICE (the emulator's nice value, -10), LAB_NICE (the nice value of every contender's servers, the fake
# and the client, 0: below 0 they go before other work on a shared machine, all contenders alike), LAB_PCAP=1 (the WebSocket tunnel's packet headers, seen from the relay's side, in $LAB_DIR/tunnel-*.pcap), LAB_TRACE=1 (one JSON line per measured request, with the
# time to the response header and Strait's Server-Timing, in $LAB_DIR/trace.jsonl), LAB_LOG_LEVEL (edges' and
# relay's log level, warn; info logs every request with its session), LAB_RELAY_LOG_LEVEL (the relay's alone, e.g. info
# for its session renewals while the edges stay at warn).
# LAB_UPSTREAM (http or https): how the relay calls the fake provider, over its plain HTTP/1.1 listener (one
# connection per open stream, like nginx's relay tier) or over TLS with HTTP/2 (a few connections for all streams,
# as the relay calls the real APIs); default https in the memory phase, http elsewhere.
# LAB_STRAIT_ENV: environment for the strait edges and relay alone, e.g. "GODEBUG=gctrace=1" or "GOGC=200".
# LAB_FAKE_GZIP=1: the fake gzips answers when offered (only the relay offers it; default: plain for all).
# QLOGDIR, when exported, reaches edges and relays: each QUIC connection writes a qlog there.
# LAB_LOOP_CONTENDERS ("direct strait-ws strait-quic nginx") and LAB_LOOP_CASES ("rate max stream bulk"; also idle: the
# servers' CPU with no load)
# for a subset of the loopback phase, LAB_PPROF=1 (in the link phase: a CPU profile of edge and relay during every
# keep-alive scenario; otherwise: serve pprof on the admin listeners, 127.0.0.1:17450
# relay, :17451 edge-ws, :17452 edge-quic, and save CPU, allocation, block and mutex profiles of every
# loopback scenario (and an execution trace of the stream one), and heap and goroutine profiles with every memory stream open, under $LAB_DIR/pprof/;
# in the memory phase it also prints each tier's live heap and stacks per stream, read after a forced GC).
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

# tunnel_cc is the congestion control the strait tunnel's TCP sockets are
# forced to (tcp_congestion in both configs). The link matrix sets it to the
# cell's cc, so a "reno" row measures the tunnel on reno: with auto the
# tunnel would pick bbr whatever the namespace default says (the sysctl only
# sets the default; a process may choose per socket). Elsewhere: auto.
tunnel_cc=auto

# admin_yaml PORT: the admin listener with pprof, when LAB_PPROF is set.
admin_yaml() { [ -n "${LAB_PPROF:-}" ] && printf 'admin_listen: "127.0.0.1:%s"\nadmin_pprof: true\n' "$1"; true; }

# upstream is how the relay calls the fake provider: http (its plain
# HTTP/1.1 listener, one TCP connection per open stream, as nginx's relay
# tier does) or https (its TLS listener with HTTP/2, many streams on a few
# connections, as the relay calls the real APIs). The memory phase defaults
# to https (LAB_UPSTREAM overrides it), the other phases to http.
upstream=http

relay_yaml() { # listen-addr fake-port fake-tls-addr
  local base="http://127.0.0.1:$2" ca=""
  if [ "$upstream" = https ]; then base="https://$3" ca="upstream_ca: $certs/front-ca.pem"; fi
  cat >"$work/relay.yaml" <<YAML
$(admin_yaml 17450)
listen: "$1"
listen_quic: "$1"
tcp_congestion: $tunnel_cc
${LAB_NOTSENT:+tcp_notsent_lowat: $LAB_NOTSENT}
tls: {cert: $certs/relay.pem, key: $certs/relay-key.pem, client_ca: $certs/ca.pem}
$ca
providers:
  - {name: openai, kind: openai, base_url: "$base", api_keys: ["fake-provider-key"], allow_headers: ["X-Fake-*"]}
YAML
}

# fec_yaml: the tunnel.quic_fec line for LAB_FEC (see the header).
fec_yaml() {
  case ${LAB_FEC:-} in
    "") ;;
    *+*) echo "quic_fec: {data: ${LAB_FEC%+*}, parity: ${LAB_FEC#*+}}" ;;
    *) echo "quic_fec: $LAB_FEC" ;;
  esac
}

edge_yaml() { # name listen relay-addr transport admin-port
  local smax="" s=""
  [ -n "${LAB_SESSIONS_MAX:-}" ] && s+="max: $LAB_SESSIONS_MAX, "
  [ -n "${LAB_SESSIONS_TARGET:-}" ] && s+="target_streams: $LAB_SESSIONS_TARGET, "
  [ -n "${LAB_SESSIONS_DIALS:-}" ] && s+="max_dials: $LAB_SESSIONS_DIALS, "
  [ -n "$s" ] && smax="sessions: {${s%, }}"
  cat >"$work/$1.yaml" <<YAML
$(admin_yaml "$5")
listen: "$2"
tls: {cert: $certs/front.pem, key: $certs/front-key.pem}
tunnel:
  relays: [{address: "$3", transport: $4, server_name: localhost}]
  ${LAB_SESSIONS:+sessions_per_relay: $LAB_SESSIONS}
  $smax
  compression: ${LAB_COMPRESSION:-deflate}
  tcp_congestion: $tunnel_cc
  ${LAB_NOTSENT:+tcp_notsent_lowat: $LAB_NOTSENT}
  ${LAB_HEDGE:+hedge: $LAB_HEDGE}
  $(fec_yaml)
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
  local d=$1 o=$2 raddr=$3 fport=17900 nice="nice -n ${LAB_NICE:-0}"
  relay_yaml "$raddr:17444" $fport "$raddr:17447"
  edge_yaml edge-ws 127.0.0.1:17443 "$raddr:17444" ws 17451
  edge_yaml edge-quic 127.0.0.1:17445 "$raddr:17444" quic 17452
  nginx_conf nginx-ovs "$raddr:17448" 127.0.0.1:$fport http "$certs/relay"
  nginx_conf nginx-dom 127.0.0.1:17446 "$raddr:17448" https "$certs/front"
  # loadgen never offers gzip, so direct and nginx get plain answers; the
  # relay offers gzip upstream, as it does to the real APIs. On these shared
  # cores the fake's compressor would be charged to Strait alone: the fake
  # answers plain unless LAB_FAKE_GZIP=1.
  local gz=-no-gzip; [ "${LAB_FAKE_GZIP:-0}" = 1 ] && gz=
  start fake "$o" $nice "$bin/fakesrv" $gz -plain 127.0.0.1:$fport -tls "$raddr:17447" -cert "$certs/front.pem" -key "$certs/front-key.pem"
  start relay "$o" $nice env ${LAB_STRAIT_ENV:-} "$bin/strait-relay" --log-format console --log-level "${LAB_RELAY_LOG_LEVEL:-${LAB_LOG_LEVEL:-warn}}" run --config "$work/relay.yaml"
  start nginx_ovs "$o" $nice nginx -p "$work/nginx-ovs" -c "$work/nginx-ovs/nginx.conf"
  start edge_ws "$d" $nice env ${LAB_STRAIT_ENV:-} "$bin/strait-edge" --log-format console --log-level "${LAB_LOG_LEVEL:-warn}" run --config "$work/edge-ws.yaml"
  start edge_quic "$d" $nice env ${LAB_STRAIT_ENV:-} "$bin/strait-edge" --log-format console --log-level "${LAB_LOG_LEVEL:-warn}" run --config "$work/edge-quic.yaml"
  start nginx_dom "$d" $nice nginx -p "$work/nginx-dom" -c "$work/nginx-dom/nginx.conf"
  # With LAB_PCAP=1: the headers of the WebSocket tunnel's packets as the
  # relay's namespace sees them, one file per stack (tcpdump, 128 bytes each).
  [ "${LAB_PCAP:-0}" = 1 ] && start pcap "$o" tcpdump -i any -n -s 128 -w "$work/tunnel-$(date -u +%H%M%S).pcap" tcp port 17444
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

# admins_of CONTENDER: name=admin-address of the Strait processes it runs through.
admins_of() {
  case $1 in
    strait-ws) echo "edge=127.0.0.1:17451 relay=127.0.0.1:17450" ;;
    strait-quic) echo "edge=127.0.0.1:17452 relay=127.0.0.1:17450" ;;
  esac
}

# profile NAME CONTENDER DELAY PROFILES...: with LAB_PPROF, fetch each
# profile ("profile?seconds=8", "heap", ...) from the contender's edge and
# relay after DELAY seconds, in the background; prof_wait waits for them.
prof_pids=()
prof_ns_edge=- prof_ns_relay=- # the namespaces the link matrix runs edges and relay in
profile() {
  local name=$1 c=$2 delay=$3 a p; shift 3
  [ -n "${LAB_PPROF:-}" ] || return 0
  mkdir -p "$work/pprof"
  for a in $(admins_of "$c"); do for p in "$@"; do
    local file="$work/pprof/$name-${a%%=*}.${p%%\?*}.pb.gz"
    [[ $p == *debug=1* ]] && file="$work/pprof/$name-${a%%=*}.${p%%\?*}.txt" # text: heap?debug=1 has runtime.MemStats
    local pns=$prof_ns_edge; [ "${a%%=*}" = relay ] && pns=$prof_ns_relay
    (sleep "$delay"; inns "$pns" curl -sf -o "$file" "http://${a#*=}/debug/pprof/$p") &
    prof_pids+=($!)
  done; done
}
prof_wait() { local p; for p in "${prof_pids[@]}"; do wait "$p" || echo "  a profile fetch failed"; done; prof_pids=(); }

# live_mem CONTENDER: "tier=heap:stacks ..." in bytes for each of the
# contender's tiers, read from runtime.MemStats right after a forced GC
# (heap?gc=1): what the process holds, without the garbage that RSS also
# carries until the next cycle. Needs LAB_PPROF (the admin listeners).
live_mem() {
  local a
  for a in $(admins_of "$1"); do
    curl -sf "http://${a#*=}/debug/pprof/heap?gc=1&debug=1" |
      awk -v t="${a%%=*}" '/^# HeapAlloc = /{h=$4} /^# Stack = /{s=$4} END{printf "%s=%s:%s ", t, h, s}'
  done
}

# live_per_stream BEFORE AFTER N: the live heap and stacks per stream of each
# tier, in KiB, from two live_mem readings with N streams open in between.
live_per_stream() {
  local b a n=$3 out="" t
  for a in $2; do
    t=${a%%=*}
    for b in $1; do [ "${b%%=*}" = "$t" ] && break; done
    out+=$(awk -v t="$t" -v b="${b#*=}" -v a="${a#*=}" -v n="$n" 'BEGIN{split(b,x,":"); split(a,y,":");
      printf "%s heap %.1f + stacks %.1f KiB, ", t, (y[1]-x[1])/n/1024, (y[2]-x[2])/n/1024}')
  done
  echo "  live per stream (after a forced GC): ${out%, }"
}

# lg NS LABELS LOADGEN-ARGS...: one bounded scenario, appended to $results.
lg() {
  local n=$1 labels=$2; shift 2
  inns "$n" timeout 60 nice -n "${LAB_NICE:-0}" "$bin/loadgen" run --ca "$certs/front-ca.pem" --key "$key" --out "$results" \
    --label "$labels" --duration 45s --timeout 50s ${LAB_TRACE:+--trace "$work/trace.jsonl"} "$@" | tail -n 1 | sed "s|^|  $labels  |" || echo "  $labels: scenario failed ($?)"
}

set_cc() { # cc: per-namespace default congestion control (new sockets only)
  for n in "$dom" "$ovs"; do inns "$n" sysctl -qw net.ipv4.tcp_congestion_control="$1"; done
}

start_link() {
  # The emulator runs at a higher priority than the servers it carries: on a
  # busy host its own scheduling delay is added to the link's (linkem's
  # "late" counters), and congestion controllers read it as queueing.
  start linkem - nice -n "${LAB_LINKEM_NICE:--10}" "$bin/linkem" run --ns "$ns" --ctl "$ctl" --seed "${LAB_SEED:-1}"
  for _ in $(seq 1 50); do
    if "$bin/linkem" set --ctl "$ctl" >/dev/null 2>&1; then
      # Both namespaces, so every contender's TCP connections get it.
      if [ -n "${LAB_SLOW_START_AFTER_IDLE:-}" ]; then
        inns "$dom" sysctl -qw net.ipv4.tcp_slow_start_after_idle="$LAB_SLOW_START_AFTER_IDLE"
        inns "$ovs" sysctl -qw net.ipv4.tcp_slow_start_after_idle="$LAB_SLOW_START_AFTER_IDLE"
      fi
      return 0
    fi
    sleep 0.1
  done
  echo "linkem did not start: $(cat "$work/linkem.log")"; exit 1
}

# diag: with LAB_DIAG=1, cumulative drop counters: the emulator's (random
# loss vs. its queue), each namespace's UDP counters (RcvbufErrors: socket
# buffer overflows) and the kernel's input backlog (softnet) drops, which
# /proc counts for the whole host.
diag() {
  [ "${LAB_DIAG:-0}" = 1 ] || return 0
  echo "    linkem: $(curl -s --max-time 5 "http://$ctl/stats")"
  local n
  for n in "$dom" "$ovs"; do
    echo "    $n udp: $(inns "$n" awk '/^Udp:/ {if (!h) {split($0, k); h=1} else for (i=2; i<=NF; i++) printf "%s=%s ", k[i], $i}' /proc/net/snmp)"
  done
  echo "    softnet drops (host, per CPU): $(cut -d' ' -f2 /proc/net/softnet_stat | tr '\n' ' ')"
  # TCP loss recovery in each namespace, cumulative: retransmission
  # timeouts (each stalls a whole multiplexed session for its RTO), tail
  # loss probes, and timeouts found spurious.
  for n in "$dom" "$ovs"; do
    echo "    $n tcp: $(inns "$n" nstat -asz TcpRetransSegs TcpExtTCPTimeouts TcpExtTCPLossProbes TcpExtTCPSpuriousRTOs TcpExtTCPLossProbeRecovery | awk '!/^#/ {printf "%s=%s ", $1, $2}')"
  done
  # TCP across the border, from both sides (the overseas side sends the
  # answers): Strait's WebSocket sessions (17444) and nginx's upstream
  # connections (17448), with their windows, retransmissions and timers,
  # cumulative over each connection's life.
  echo "== $(date -u +%T.%N)" >>"$work/ss.txt"
  inns "$dom" ss -tino state established "( dport = :17444 or dport = :17448 )" >>"$work/ss.txt" 2>&1 || true
  echo "-- overseas side" >>"$work/ss.txt"
  inns "$ovs" ss -tino state established "( sport = :17444 or sport = :17448 )" >>"$work/ss.txt" 2>&1 || true
  echo "    ss -tin saved to $work/ss.txt"
  # CPU seconds used so far by the lab's processes (cumulative; the
  # difference between two scenarios is what one cost): on two shared cores
  # a busy process delays everyone's packets and events.
  echo "    cpu s: $(proc_ticks '^(strait-edge|strait-relay|nginx|fakesrv|loadgen|linkem)$' | awk -v hz="$(getconf CLK_TCK)" '{printf "%s=%.2f ", $1, $2 / hz}')"
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
  upstream=${LAB_UPSTREAM:-http}
  start_link
  prof_ns_edge=$dom prof_ns_relay=$ovs
  local cc rtt loss burst c conc reqs links
  for cc in $ccs; do
    set_cc "$cc"
    tunnel_cc=$cc # the tunnel must not pick bbr on its own in a reno cell (see tunnel_cc)
    links=""
    for rtt in $rtts; do for loss in $losses; do links+=" $rtt:$loss:0"; done; done
    [ "${LAB_BURST:-4}" != 0 ] && links+=" ${rtts##* }:${losses##* }:${LAB_BURST:-4}"
    for l in $links; do
      IFS=: read -r rtt loss burst <<<"$l"
      "$bin/linkem" set --ctl "$ctl" --delay "$((rtt / 2))ms" --loss "$loss" --burst "$burst" >/dev/null
      # A fresh stack per link, started after the link is set: sessions and
      # keep-alive connections opened over another link carry its RTT
      # history. A QUIC connection never forgets its minimum RTT, and one
      # taken over a 0 ms link made quic-go's hybrid slow start quit at the
      # first 150 ms sample (README: QUIC bulk at 1.5 MB/s).
      start_stack "$dom" "$ovs" 10.77.0.2   # fresh sockets, so they use this link's history and cc
      header "cc $cc, RTT ${rtt} ms, loss $loss (burst $burst)"
      for c in $contenders; do
        if [ "$c" = strait-quic ] && [ "$cc" != "${ccs%% *}" ]; then continue; fi # UDP: the TCP cc does not apply
        local ccl=$cc; [ "$c" = strait-quic ] && ccl=quic
        local labels="scenario=link,contender=$c,cc=$ccl,rtt=$rtt,loss=$loss,burst=$burst"
        [ "$upstream" = https ] && [[ $c == strait-* ]] && labels+=",upstream=https"
        for conc in $concs; do
          reqs=$conc; [ "$conc" = 1 ] && reqs=3
          lg "$dom" "$labels" --url "$(url_of "$c")" --mode fresh --concurrency "$conc" --requests "$reqs"
          diag
        done
        for conc in $keepalive; do
          # With LAB_PPROF: a CPU profile of edge and relay while the streams run.
          profile "link-$c-cc$cc-loss$loss-ka$conc" "$c" 0.5 "profile?seconds=4"
          lg "$dom" "$labels" --url "$(url_of "$c")" --mode keepalive --concurrency "$conc" --requests "$conc"
          prof_wait
          diag
        done
        if [ "$bulk" != 0 ] && [ "$burst" = 0 ] && [ "$rtt" = "${rtts%% *}" ]; then
          lg "$dom" "$labels" --url "$(url_of "$c")" --mode fresh --kind bulk --concurrency 1 --requests 1 --timeout 30s
          diag
        fi
      done
      stop_servers 1
    done
  done
  stop_servers 0
  tunnel_cc=auto
  prof_ns_edge=- prof_ns_relay=- # the loopback and memory phases run in the root namespace
}

# proc_ticks REGEX: "name ticks" for every process name matching REGEX, its
# user and system CPU clock ticks so far, summed over its processes.
proc_ticks() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v re="$1" '{gsub(/[()]/, "", $2)} $2 ~ re {a[$2] += $14 + $15} END {for (k in a) print k, a[k]}'
}

# server_ticks CONTENDER: CPU clock ticks used so far by the contender's
# servers (both Strait tiers, or nginx's two; none for direct), for CPU per
# request: a steadier measure of what a change costs than a rate on two
# shared cores.
server_ticks() {
  local names='^$'
  case $1 in strait-*) names='^(strait-edge|strait-relay)$' ;; nginx) names='^nginx$' ;; esac
  proc_ticks "$names" | awk '{t += $2} END {print t + 0}'
}

# lg_cpu CONTENDER N LABELS ARGS...: lg N LABELS ARGS..., then the
# contender's servers' CPU per completed request, printed and appended to
# $LAB_DIR/cpu.tsv (labels, ok, CPU ms, µs per request).
lg_cpu() {
  local c=$1 before after ok
  shift
  before=$(server_ticks "$c")
  lg "$@"
  after=$(server_ticks "$c")
  ok=$(tail -n 1 "$results" | sed -n 's/.*"ok":\([0-9]*\).*/\1/p')
  [ -n "$ok" ] && [ "$ok" -gt 0 ] || return 0
  awk -v w="$work" -v l="$2" -v ok="$ok" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
    ms = t * 1000 / hz; printf "    servers cpu: %.0f ms for %d requests, %.1f us/request\n", ms, ok, ms * 1000 / ok
    printf "%s\t%d\t%.0f\t%.1f\n", l, ok, ms, ms * 1000 / ok >> (w "/cpu.tsv") }'
}

phase_loopback() {
  upstream=${LAB_UPSTREAM:-http}
  header "loopback overhead (no emulated link; loadgen, edge, relay, nginx and the fake share the 2 cores)"
  start_stack - - 127.0.0.1
  local c r labels cases=" ${LAB_LOOP_CASES:-rate max stream bulk} "
  local delta=("profile?seconds=8" "allocs?seconds=8" "block?seconds=8" "mutex?seconds=8")
  for c in ${LAB_LOOP_CONTENDERS:-direct strait-ws strait-quic nginx}; do
    labels="scenario=loopback,contender=$c"
    [ "$upstream" = https ] && [[ $c == strait-* ]] && labels+=",upstream=https"
    if [[ $cases == *" rate "* ]]; then
      for r in 500 2000; do
        profile "$c-rate$r" "$c" 2 "${delta[@]}"
        lg_cpu "$c" - "$labels" --url "$(url_of "$c")" --mode keepalive --kind unary --tokens 1 --interval 0 \
          --rate "$r" --concurrency 256 --requests $((r * 10)) --duration 12s --timeout 10s
        prof_wait
      done
    fi
    if [[ $cases == *" max "* ]]; then
      profile "$c-max" "$c" 1 "${delta[@]}"
      lg_cpu "$c" - "$labels,max=1" --url "$(url_of "$c")" --mode keepalive --kind unary --tokens 1 --interval 0 \
        --concurrency 64 --requests 1000000 --duration 10s --timeout 10s
      prof_wait
    fi
    if [[ $cases == *" stream "* ]]; then
      # 96 streams of 1 s each, 32 at a time: about 3 s of load; a 3 s profile.
      profile "$c-stream" "$c" 0.5 "profile?seconds=3" "allocs?seconds=3" "block?seconds=3" "mutex?seconds=3" \
        "trace?seconds=3"
      lg_cpu "$c" - "$labels" --url "$(url_of "$c")" --mode keepalive --kind stream --tokens 50 --interval 20ms \
        --concurrency 32 --requests 96
      prof_wait
    fi
    if [[ $cases == *" bulk "* ]]; then
      lg - "$labels" --url "$(url_of "$c")" --mode keepalive --kind bulk --concurrency 1 --requests 3
    fi
    if [[ $cases == *" idle "* ]]; then
      # What the contender's servers cost with no request at all (probes,
      # heartbeats, timers), over 10 s: a floor under every CPU figure.
      local t0
      t0=$(server_ticks "$c")
      sleep 10
      echo "  $labels,idle=1  servers cpu: $((($(server_ticks "$c") - t0) * 1000 / $(getconf CLK_TCK) / 10)) ms per second"
    fi
  done
  stop_servers 0
}

phase_memory() {
  upstream=${LAB_UPSTREAM:-https}
  header "memory with slow streams (1 token per second), a fresh stack per run; relay to the fake over $upstream"
  local n c edgepid
  for c in ${LAB_MEM_CONTENDERS:-strait-ws strait-quic}; do
    for n in ${LAB_MEM_STREAMS:-1000 10000}; do
      start_stack - - 127.0.0.1
      edgepid=$pid_edge_ws; [ "$c" = strait-quic ] && edgepid=$pid_edge_quic
      # One connection per stream, opened over 10 s; RSS is sampled 3 s after
      # the last first token, while every stream is still open (and so are the
      # heap and goroutine profiles, 14 s in).
      profile "$c-mem$n" "$c" 14 heap goroutine "heap?debug=1"
      local live0="" live1=""
      if [ -n "${LAB_PPROF:-}" ]; then
        live0=$(live_mem "$c")
        # 20 s in: every stream open, after RSS was sampled (a forced GC must not move it).
        (sleep 20; live_mem "$c" >"$work/live-$c-$n") &
        prof_pids+=($!)
      fi
      lg - "scenario=memory,contender=$c,upstream=$upstream" --url "$(url_of "$c")" --mode fresh --warmup 0 --ramp 10s --kind stream \
        --tokens 30 --interval 1s --prompt-bytes "${LAB_MEM_PROMPT:-0}" --concurrency "$n" --requests "$n" --rss "edge=$edgepid,relay=$pid_relay" \
        --timeout 45s --duration 45s
      prof_wait
      [ -n "$live0" ] && live1=$(cat "$work/live-$c-$n") && live_per_stream "$live0" "$live1" "$n"
      stop_servers 0
    done
  done
}

# phase_doctor: `strait-edge doctor` from the domestic namespace over the
# emulated link (LAB_DOCTOR_RTT ms round trip, LAB_DOCTOR_LOSS loss each way:
# 150 and 0.03 by default); its report should name what linkem is set to.
# The report in plain words goes to stdout, as JSON to $work/doctor.json.
phase_doctor() {
  local rtt=${LAB_DOCTOR_RTT:-150} loss=${LAB_DOCTOR_LOSS:-0.03} raddr=10.77.0.2
  start_link
  "$bin/linkem" set --ctl "$ctl" --delay "$((rtt / 2))ms" --loss "$loss" >/dev/null
  relay_yaml "$raddr:17444" 17900 "$raddr:17447"
  edge_yaml edge-doctor 127.0.0.1:17443 "$raddr:17444" auto 17451
  start relay "$ovs" "$bin/strait-relay" --log-format console --log-level warn run --config "$work/relay.yaml"
  for _ in $(seq 1 50); do
    inns "$dom" timeout 2 bash -c "exec 3<>/dev/tcp/$raddr/17444" 2>/dev/null && break
    sleep 0.2
  done
  header "strait-edge doctor over linkem: RTT $rtt ms, loss $loss each way"
  inns "$dom" "$bin/strait-edge" doctor --config "$work/edge-doctor.yaml" --probes 200 || true
  inns "$dom" "$bin/strait-edge" doctor --config "$work/edge-doctor.yaml" --probes 200 --json >"$work/doctor.json" || true
  stop_servers 0
}

phase_smoke() {
  header "smoke: one small scenario per contender over a 150 ms, 1 % loss link"
  link_matrix "8" "0.01" "150" "bbr" "${LAB_CONTENDERS:-direct nginx strait-ws strait-quic}" "" 0
}

case $phase in
  selftest) phase_selftest ;;
  smoke) LAB_BURST=0 phase_smoke ;;
  link)
    concs=${LAB_CONCS:-1 32 256} keepalive=${LAB_KEEPALIVE-32 256}
    [ "${LAB_BULK:-1}" = only ] && concs="" keepalive=""
    link_matrix "$concs" "${LAB_LOSSES:-0 0.01 0.03}" "${LAB_RTTS:-150 250}" "${LAB_CCS:-bbr reno}" \
      "${LAB_CONTENDERS:-direct nginx strait-ws strait-quic}" "$keepalive" "${LAB_BULK:-1}" ;;
  loopback) phase_loopback ;;
  memory) phase_memory ;;
  doctor) phase_doctor ;;
  all) phase_selftest; link_matrix "1 32 256" "0 0.01 0.03" "150 250" "bbr reno" "direct nginx strait-ws strait-quic" "32 256" 1
    phase_loopback; phase_memory ;;
  *) echo "unknown phase $phase"; exit 2 ;;
esac
[ -s "$results" ] && "$bin/loadgen" markdown "$results" >"$work/tables.md" && "$bin/loadgen" table "$results"
echo "results: $results (tables: $work/tables.md)"
