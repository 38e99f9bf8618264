package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strait/strait/cmd/internal/edgecmd"
)

// TestClientBufferBudget: client_buffer_budget charges a response blocked
// on its client with what its tunnel stream holds unread at the edge, not
// with a worst case for every write that lasted over a second. Clients
// starved of CPU for seconds (a loaded CI machine) whose streams hold less
// than the budget together all get their whole responses; clients that
// never read, holding more than the budget together, are cut, the one
// blocked the longest first, until what they hold is within it.
func TestClientBufferBudget(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		const (
			window     = 256 << 10 // the smallest window the tunnels accept
			budget     = 2 << 20
			eventBytes = 8 << 20 // more than a window and the sockets' buffers (the edge's grows to 4 MiB)
			starved    = 6       // 6 full windows fit the budget; 6 worst-case charges did not
			// A non-reader's stream holds a little less than its window
			// (the edge has read the piece it is writing, and the relay
			// may not have filled the rest): 10 held 2.09 MB, just under
			// the budget, in one run. 14 are well over it.
			neverRead = 14
		)
		up := &bigEvent{eventBytes: eventBytes, finish: true}
		// Loopback sockets would take the whole response into their
		// buffers; a client's small receive buffer leaves it at the edge.
		small := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
			return errors.Join(err, serr)
		}}
		s := newStack(t, stackOptions{transport: transport,
			upstream: func(next http.Handler) http.Handler { up.next = next; return up },
			edgeEdit: func(f *edgecmd.File) {
				f.Tunnel.StreamWindow, f.ClientBufferBudget = window, budget
				// QUIC's session window (4 stream windows by default)
				// would stall the later streams before their clients do.
				f.Tunnel.SessionWindow = 4 * budget
			}})
		ask := func(t *testing.T) *http.Response { _, resp := askBigEventOn(t, s.dialHTTP1With(t, small)); return resp }

		t.Run("starved clients keep their responses", func(t *testing.T) {
			var resps []*http.Response
			for range starved {
				resps = append(resps, ask(t))
			}
			waitBlocked(t, s, starved)
			// Starved for well over the second after which a write counts
			// as blocked; a loaded machine only makes this longer.
			time.Sleep(2500 * time.Millisecond)
			for i, resp := range resps {
				body, err := io.ReadAll(resp.Body)
				if err != nil || len(body) < eventBytes || !bytes.HasSuffix(body, []byte("\"}}]}\n\n")) {
					t.Errorf("client %d: %d bytes, %v; want the whole %d-byte event", i, len(body), err, eventBytes)
				}
			}
			if n := edgeMetric(s, `strait_edge_slow_clients_cut_total{reason="buffer_budget"}`); n != 0 {
				t.Errorf("the budget cut %v responses of clients that hold less than it together", n)
			}
		})

		t.Run("clients that never read are cut", func(t *testing.T) {
			for range neverRead {
				ask(t) // and never read the body
			}
			deadline := time.Now().Add(30 * time.Second)
			for edgeMetric(s, `strait_edge_slow_clients_cut_total{reason="buffer_budget"}`) == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if n := edgeMetric(s, `strait_edge_slow_clients_cut_total{reason="buffer_budget"}`); n == 0 {
				t.Fatalf("%d clients that never read hold more than the budget, and none was cut in 30s (%v blocked, holding %v bytes)", neverRead,
					edgeMetric(s, "strait_edge_responses_blocked_on_client"), edgeMetric(s, "strait_edge_client_buffer_bytes"))
			}
			// The budget acts once a second: streams still filling (or let
			// through a session window the cuts freed) may take a pass or
			// two more to come within it.
			held := edgeMetric(s, "strait_edge_client_buffer_bytes")
			for ; held > budget && time.Now().Before(deadline); held = edgeMetric(s, "strait_edge_client_buffer_bytes") {
				time.Sleep(50 * time.Millisecond)
			}
			if held > budget {
				t.Errorf("responses blocked on their clients still hold %v bytes after the cuts; budget %d", held, budget)
			}
		})
	})
}

// waitBlocked waits until n responses are inside a write to their clients.
func waitBlocked(t *testing.T, s *stack, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for edgeMetric(s, "strait_edge_responses_blocked_on_client") < float64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("%v responses blocked on their clients after 30s; want %d",
				edgeMetric(s, "strait_edge_responses_blocked_on_client"), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// edgeMetric is the value of the edge's sample named exactly name (with
// its labels), 0 when absent.
func edgeMetric(s *stack, name string) float64 {
	for _, line := range edgeMetricLines(s) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}
