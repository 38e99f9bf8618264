#!/usr/bin/env bash
# The project's test command (README "Quick start", step 2; CI runs it via .ci/run).
# Needs only Go: modules come from the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."

go mod download
go build ./...
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go test -race -count=1 -timeout 15m ./...
