#!/usr/bin/env bash
# The project's test command (README "Quick start", step 2; CI runs it via .ci/run).
# Needs Go (modules come from the Go module proxy) and the redis-server
# binary: the shared-store tests start their own on a loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || {
  echo "redis-server is required by the tests (Debian/Ubuntu: apt-get install -y redis-server; .ci/run installs it)"; exit 1; }

go mod download
go build ./...
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go test -race -count=1 -timeout 15m ./...
# Allocation pins hold exactly only without the race detector, which empties
# sync.Pools on purpose.
go test -count=1 -run 'Allocations|AllocatesNothing' ./edge/guard ./edge/usage
