package wstun

import (
	"testing"

	"github.com/strait/strait/tunnel/tunneltest"
)

// families and sseStreams: real SSE events of the three API families from
// the fake provider (tunneltest.SSEStreams).
var families = tunneltest.Families

func sseStreams(tb testing.TB, fam tunneltest.Family, n, tokens int) [][][]byte {
	return tunneltest.SSEStreams(tb, fam, n, tokens)
}
