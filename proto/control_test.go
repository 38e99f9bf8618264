package proto

import (
	"bufio"
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestControlRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	g := GoAway{Drain: 30 * time.Second, Message: "relay shutting down"}
	if err := w.WritePing(7); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePong(1 << 40); err != nil {
		t.Fatal(err)
	}
	accepting := GoAway{Drain: time.Second, Message: "restarting", Accepting: true}
	renewal := GoAway{Message: "renewing", Renewal: true}
	for _, g := range []GoAway{g, accepting, renewal} {
		if err := w.WriteGoAway(g); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&buf)
	for _, want := range []struct {
		typ FrameType
		seq uint64
	}{{FramePing, 7}, {FramePong, 1 << 40}} {
		typ, p, err := ReadFrame(r, nil)
		if err != nil || typ != want.typ {
			t.Fatalf("frame %v, %v; want %v", typ, err, want.typ)
		}
		if seq, err := ParseSeq(p); err != nil || seq != want.seq {
			t.Fatalf("seq %d, %v; want %d", seq, err, want.seq)
		}
	}
	for _, want := range []GoAway{g, accepting, renewal} {
		typ, p, err := ReadFrame(r, nil)
		if err != nil || typ != FrameGoAway {
			t.Fatalf("frame %v, %v; want goaway", typ, err)
		}
		got, err := ParseGoAway(p)
		if err != nil || !reflect.DeepEqual(*got, want) {
			t.Fatalf("goaway %+v, %v; want %+v", got, err, want)
		}
	}
}

// TestGoAwayFlags: the flag byte is read bit by bit; bits it does not
// know (from a newer relay) are ignored, not an error.
func TestGoAwayFlags(t *testing.T) {
	for _, tc := range []struct {
		flags              byte
		accepting, renewal bool
	}{
		{0, false, false}, {1, true, false}, {2, false, true}, {3, true, true}, {0x80 | 2, false, true},
	} {
		g, err := ParseGoAway([]byte{1, 0, tc.flags})
		if err != nil || g.Accepting != tc.accepting || g.Renewal != tc.renewal {
			t.Errorf("flags %#x: %+v, %v; want accepting %v, renewal %v", tc.flags, g, err, tc.accepting, tc.renewal)
		}
	}
}

func TestControlMalformed(t *testing.T) {
	for name, p := range map[string][]byte{
		"empty goaway":      {},
		"drain overflows":   {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0},
		"goaway two flags":  {1, 0, 1, 1},
		"forged msg length": {1, 0xff, 0x0f},
	} {
		if _, err := ParseGoAway(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	if seq, err := ParseSeq([]byte{5, 0, 0, 0}); err != nil || seq != 5 {
		t.Errorf("padded seq = %d, %v; want 5", seq, err)
	}
	for name, p := range map[string][]byte{"empty seq": {}, "seq cut short": {0x80}} {
		if _, err := ParseSeq(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzGoAway(f *testing.F) {
	f.Add((&GoAway{Drain: time.Minute, Message: "draining"}).Append(nil))
	f.Add((&GoAway{Drain: time.Minute, Message: "restarting", Accepting: true}).Append(nil))
	f.Add((&GoAway{Message: "renewing", Renewal: true}).Append(nil))
	f.Add([]byte{})
	f.Add([]byte{0x80, 0x00, 0x01, 'x'}) // non-canonical varint
	f.Fuzz(func(t *testing.T, p []byte) {
		g, err := ParseGoAway(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		enc := g.Append(nil)
		if len(enc) > len(p) {
			t.Fatalf("re-encoding grew %d -> %d bytes", len(p), len(enc))
		}
		again, err := ParseGoAway(enc)
		if err != nil || !reflect.DeepEqual(again, g) {
			t.Fatalf("re-encode mismatch: %+v vs %+v (%v)", again, g, err)
		}
	})
}
