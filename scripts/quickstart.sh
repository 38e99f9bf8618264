#!/usr/bin/env bash
# Quick start: build Strait, make certificates, start a local relay and edge,
# and stream one completion through them with the official SDK.
#
# With no provider keys in the environment the relay calls a local fake
# provider. With OPENAI_API_KEY, ANTHROPIC_API_KEY and/or GEMINI_API_KEY set,
# those families go to the real APIs (from this machine: run the relay
# overseas for the real thing, see README "Deploy").
#
# Ports: STRAIT_EDGE_PORT (9443), STRAIT_RELAY_PORT (9444), STRAIT_FAKE_PORT (9900).
# STRAIT_QUICKSTART_KEEP=1 leaves the servers running after the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

work=.quickstart
edge_port=${STRAIT_EDGE_PORT:-9443}
relay_port=${STRAIT_RELAY_PORT:-9444}
fake_port=${STRAIT_FAKE_PORT:-9900}
mkdir -p "$work" bin

echo "==> building strait-edge, strait-relay and strait-demo"
go build -o bin/ ./cmd/strait-edge ./cmd/strait-relay ./scripts/demo
mv -f bin/demo bin/strait-demo

# front-ca.pem: certificates made before the front had a CA of its own are made again
if [ ! -f "$work/certs/front-ca.pem" ]; then
  echo "==> generating certificates in $work/certs"
  bin/strait-relay certs --dir "$work/certs" --relay-dns localhost --relay-ip 127.0.0.1 \
    --front-dns localhost --front-ip 127.0.0.1 --force
fi

pids=()
cleanup() {
  [ "${STRAIT_QUICKSTART_KEEP:-}" = 1 ] && { echo "servers left running: ${pids[*]}"; return; }
  # Newest first: the edge stops before the relay it depends on.
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Each family goes to the real API when its key is set, else to the fake.
fake="http://127.0.0.1:$fake_port"
provider() { # name kind real_base env_var
  if [ -n "${!4:-}" ]; then
    printf '  - {name: %s, kind: %s, base_url: "%s", api_keys: ["${%s}"]}\n' "$1" "$2" "$3" "$4"
  else
    printf '  - {name: %s, kind: %s, base_url: "%s", api_keys: ["fake-provider-key"]}\n' "$1" "$2" "$fake"
  fi
}
{
  cat <<YAML
listen: "127.0.0.1:$relay_port"
listen_quic: "127.0.0.1:$relay_port"
tls: {cert: certs/relay.pem, key: certs/relay-key.pem, client_ca: certs/ca.pem}
providers:
YAML
  provider openai openai https://api.openai.com OPENAI_API_KEY
  provider anthropic anthropic https://api.anthropic.com ANTHROPIC_API_KEY
  provider gemini gemini https://generativelanguage.googleapis.com GEMINI_API_KEY
} > "$work/relay.yaml"

export STRAIT_CLIENT_KEY=${STRAIT_CLIENT_KEY:-sk-strait-quickstart-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}
cat > "$work/edge.yaml" <<YAML
listen: "127.0.0.1:$edge_port"
tls: {cert: certs/front.pem, key: certs/front-key.pem}
tunnel:
  relays: [{address: "127.0.0.1:$relay_port", transport: auto, server_name: localhost}]
  cert: certs/edge.pem
  key: certs/edge-key.pem
  ca: certs/ca.pem
client_keys:
  - {name: quickstart, key: "\${STRAIT_CLIENT_KEY}"}
YAML

log=(--log-format console --log-level "${STRAIT_LOG_LEVEL:-warn}")
if grep -q fake-provider-key "$work/relay.yaml"; then
  echo "==> starting the fake provider on $fake"
  bin/strait-relay fake-provider --listen "127.0.0.1:$fake_port" --tokens 40 --interval 25ms &
  pids+=($!)
fi
echo "==> starting the relay on 127.0.0.1:$relay_port (TCP: WebSocket, UDP: QUIC) and the edge on https://localhost:$edge_port"
(cd "$work" && exec ../bin/strait-relay "${log[@]}" run --config relay.yaml) &
pids+=($!)
(cd "$work" && exec ../bin/strait-edge "${log[@]}" run --config edge.yaml) &
pids+=($!)

api=openai
if [ -z "${OPENAI_API_KEY:-}" ] && [ -n "${ANTHROPIC_API_KEY:-}" ]; then api=anthropic; fi
if [ -z "${OPENAI_API_KEY:-}${ANTHROPIC_API_KEY:-}" ] && [ -n "${GEMINI_API_KEY:-}" ]; then api=gemini; fi
echo "==> client key for this run: $STRAIT_CLIENT_KEY"
echo "==> streaming a completion through edge -> tunnel -> relay ($api SDK)"
echo
bin/strait-demo --base-url "https://localhost:$edge_port" --ca "$work/certs/front-ca.pem" --api "$api" --wait 15s
