package pool

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
)

// sessOf names the fake session a pool stream was opened on.
func sessOf(t *testing.T, st tunnel.Stream) *fakeSession {
	t.Helper()
	return st.(*stream).Stream.(*fakeStream).sess
}

// TestOpenHedge opens the hedge stream on another session to the same
// relay, never on the first stream's session nor on another relay's, and
// fails at once when there is none.
func TestOpenHedge(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name     string
		sessions []int // sessions per relay
		want     bool  // a hedge stream exists
	}{
		{"two sessions to one relay", []int{2}, true},
		{"one session", []int{1}, false},
		{"one session to each of two relays", []int{1, 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dialers []tunnel.Dialer
			total := 0
			for i, n := range tt.sessions {
				dialers = append(dialers, newFakeDialer("relay"+string(rune('a'+i)), 0))
				total += n
			}
			p := newPool(t, Config{Dialers: dialers, SessionsPerRelay: tt.sessions[0], MaxSessionsPerRelay: tt.sessions[0]})
			waitLive(t, p, total)
			for range 4 { // whichever session the first stream lands on
				first, err := p.OpenStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				second, err := p.OpenHedge(ctx, first)
				if !tt.want {
					if !errors.Is(err, ErrNoHedge) {
						t.Fatalf("OpenHedge = %v, want ErrNoHedge", err)
					}
					first.Close()
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if sessOf(t, first) == sessOf(t, second) {
					t.Fatal("hedge stream on the first stream's session")
				}
				if first.(*stream).l.relay != second.(*stream).l.relay {
					t.Fatal("hedge stream on another relay")
				}
				first.Close()
				second.Close()
			}
		})
	}
	if _, err := (&Pool{}).OpenHedge(context.Background(), nil); !errors.Is(err, ErrNoHedge) {
		t.Fatalf("OpenHedge of a foreign stream = %v", err)
	}
}

// TestOpenHedgeSkipsFullSession: a hedge is not opened on a session at its
// stream limit, where an open could wait for a stream to end.
func TestOpenHedgeSkipsFullSession(t *testing.T) {
	ctx := t.Context()
	p := newPool(t, Config{Dialers: []tunnel.Dialer{newFakeDialer("relay", 0)}, SessionsPerRelay: 2,
		MaxSessionsPerRelay: 2, Scale: ScaleConfig{MaxStreams: 1}})
	waitLive(t, p, 2)
	first, err := p.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	other, err := p.OpenStream(ctx) // the other session, now at its limit
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if sessOf(t, first) == sessOf(t, other) {
		t.Fatal("both streams on one session")
	}
	if st, err := p.OpenHedge(ctx, first); !errors.Is(err, ErrNoHedge) {
		if st != nil {
			st.Close()
		}
		t.Fatalf("OpenHedge = %v, want ErrNoHedge", err)
	}
}

// holdingSession is a fakeSession whose streams wait for each other's
// losses for hold (tunnel.LossHoldsAll).
type holdingSession struct {
	*fakeSession
	hold time.Duration
}

func (h holdingSession) LossHoldsAll() time.Duration { return h.hold }

// TestHedgeUseful: a hedge pays on a session whose streams wait behind
// each other's losses on a long path, under a model-based congestion
// control; not where streams are independent (QUIC), the path is short, or
// every loss halves the window the answer's second copy would share.
func TestHedgeUseful(t *testing.T) {
	for _, tt := range []struct {
		name       string
		hold       time.Duration
		congestion string
		want       bool
	}{
		{"WebSocket, long path, bbr", 150 * time.Millisecond, "bbr", true},
		{"WebSocket, long path, reno", 150 * time.Millisecond, "reno", false},
		{"WebSocket, long path, unknown congestion control", 150 * time.Millisecond, "", false},
		{"WebSocket, short path, bbr", 0, "bbr", false},
	} {
		sess := holdingSession{&fakeSession{congestion: tt.congestion}, tt.hold}
		if got := (&Pool{}).HedgeUseful(&stream{l: &link{sess: sess}}); got != tt.want {
			t.Errorf("%s: %v; want %v", tt.name, got, tt.want)
		}
	}
	quic := &fakeSession{congestion: "bbr"} // no LossHoldsAll: streams do not wait for each other
	if (&Pool{}).HedgeUseful(&stream{l: &link{sess: quic}}) {
		t.Error("a session whose streams do not wait for each other's losses is hedged")
	}
	if (&Pool{}).HedgeUseful(nil) {
		t.Error("a foreign stream is hedged")
	}
}
