#!/usr/bin/env bash
# Build the strait-relay and strait-edge images (scripts/docker/Dockerfile)
# and smoke-test them: `version` in each, then a relay made by `init` and an
# edge made by `join` in two containers on a private network, with the
# edge's doctor checking the tunnel. Uses docker, else podman; exits 2 with
# a message when neither can build (no daemon, no rootful podman).
#
#   scripts/docker/build.sh [VERSION]
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${1:-dev}

engine=
for e in docker podman; do
  if command -v "$e" >/dev/null && "$e" info >/dev/null 2>&1; then engine=$e; break; fi
done
[ -n "$engine" ] || { echo "no working docker or podman here: images not built" >&2; exit 2; }

for t in relay edge; do
  echo "==> building strait-$t:$version with $engine"
  "$engine" build -f scripts/docker/Dockerfile --target "$t" --build-arg VERSION="$version" -t "strait-$t:$version" .
  "$engine" run --rm "strait-$t:$version" version
done

net=strait-smoke-$$
cleanup() {
  "$engine" rm -f "$net-relay" "$net-edge" >/dev/null 2>&1 || true
  "$engine" volume rm -f "$net-relay-etc" "$net-relay-data" "$net-edge-etc" "$net-edge-data" >/dev/null 2>&1 || true
  "$engine" network rm "$net" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$engine" network create "$net" >/dev/null

echo "==> relay: init, run"
"$engine" run --rm -e OPENAI_API_KEY=sk-smoke-0123456789 -e OPENAI_BASE_URL=http://127.0.0.1:9 \
  -v "$net-relay-etc:/etc/strait" -v "$net-relay-data:/var/lib/strait" "strait-relay:$version" \
  init --addr relay:8443 --listen :8443 --admin-listen :9465 --token-file /var/lib/strait/join-token
"$engine" run -d --name "$net-relay" --network "$net" --network-alias relay -e OPENAI_API_KEY=sk-smoke-0123456789 \
  -v "$net-relay-etc:/etc/strait:ro" -v "$net-relay-data:/var/lib/strait" "strait-relay:$version" >/dev/null

echo "==> edge: join, doctor"
"$engine" run --rm --network "$net" -v "$net-edge-etc:/etc/strait" -v "$net-edge-data:/var/lib/strait" \
  -v "$net-relay-data:/relay-data:ro" "strait-edge:$version" \
  join --name smoke --listen :8443 --admin-listen :9464 --front-dns localhost @/relay-data/join-token
"$engine" run --rm --network "$net" -v "$net-edge-etc:/etc/strait:ro" -v "$net-edge-data:/var/lib/strait" \
  "strait-edge:$version" doctor --config /etc/strait/edge.yaml --probes 20
echo "==> images strait-relay:$version and strait-edge:$version built and smoke-tested"
