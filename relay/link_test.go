package relay

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel"
)

func TestPeekRequestID(t *testing.T) {
	var buf bytes.Buffer
	w := proto.NewWriter(&buf)
	if err := w.WriteRequest(&proto.RequestHeader{ID: "req_123", Family: "openai", Method: "POST", Path: "/v1/chat/completions"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(`{"model":"m"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("x"), 3*peekSize)); err != nil { // more than one peek buffer
		t.Fatal(err)
	}
	whole := append([]byte(nil), buf.Bytes()...)
	br := peekPool.Get().(*bufio.Reader)
	br.Reset(&buf)
	if id, _, ok := peekRequestID(br); !ok || id != "req_123" {
		t.Fatalf("peekRequestID = %q, %v; want req_123", id, ok)
	}
	rest, _ := io.ReadAll(newPeekedStream(readerStream{r: &buf}, br))
	if !bytes.Equal(rest, whole) {
		t.Fatal("peeking consumed bytes: dispatch would not see the request")
	}
	for name, in := range map[string][]byte{
		"ping first":   proto.AppendFrame(nil, proto.FramePing, make([]byte, 10)),
		"too short":    {byte(proto.FrameRequest)},
		"header huge":  proto.AppendFrameHeader(nil, proto.FrameRequest, peekSize),
		"bad payload":  proto.AppendFrame(nil, proto.FrameRequest, []byte{0xff, 0xff}),
		"empty stream": {},
	} {
		if id, _, ok := peekRequestID(bufio.NewReaderSize(bytes.NewReader(in), peekSize)); ok {
			t.Errorf("%s: peekRequestID = %q; want none", name, id)
		}
	}
}

// TestPeekCoversHedgedHeaders: the largest header the edge hedges
// (proto.HedgeMaxHeader) is peeked for its ID, so a hedged request's
// second copy is always recognised (else it reaches the provider too).
func TestPeekCoversHedgedHeaders(t *testing.T) {
	h := &proto.RequestHeader{ID: "req_big", Family: "openai", Method: "POST", Path: "/v1/chat/completions",
		Header: http.Header{proto.HedgeHeader: {"1"}}}
	pad := proto.HedgeMaxHeader - len(h.Append(nil)) - 64
	h.Header.Set("X-Pad", strings.Repeat("p", pad))
	for len(h.Append(nil)) < proto.HedgeMaxHeader {
		h.Header.Set("X-Pad", h.Header.Get("X-Pad")+"p")
	}
	var buf bytes.Buffer
	if err := proto.NewWriter(&buf).WriteRequest(h); err != nil {
		t.Fatal(err)
	}
	if id, hedged, ok := peekRequestID(bufio.NewReaderSize(&buf, peekSize)); !ok || id != "req_big" || !hedged {
		t.Fatalf("a %d-byte header: peekRequestID = %q, hedged %v, %v; want req_big, hedged", len(h.Append(nil)), id, hedged, ok)
	}
}

// readerStream is a tunnel.Stream that only reads, from r.
type readerStream struct {
	tunnel.Stream // nil: only Read is called
	r             io.Reader
}

func (s readerStream) Read(p []byte) (int, error) { return s.r.Read(p) }

// TestIDSet: an ID is taken once; after idTTL it is forgotten.
func TestIDSet(t *testing.T) {
	var s idSet
	now := time.Now()
	if !s.add("a", now) || !s.add("b", now.Add(time.Second)) {
		t.Fatal("new IDs refused")
	}
	if s.add("a", now.Add(time.Minute)) {
		t.Fatal("a resent ID was accepted again")
	}
	if !s.add("a", now.Add(idTTL+time.Minute)) {
		t.Fatal("an ID was remembered past idTTL")
	}
	if len(s.seen) != 1 { // b expired too
		t.Fatalf("%d IDs remembered; want 1", len(s.seen))
	}
}

// TestIDSetRetakenIDExpires: an ID forgotten (never dispatched) and taken
// again holds back the expiry of no other ID, and its new record lasts its
// own idTTL.
func TestIDSetRetakenIDExpires(t *testing.T) {
	var s idSet
	now := time.Now()
	s.add("a", now)
	s.add("resent", now.Add(time.Second))
	s.add("b", now.Add(2*time.Second))
	s.begin("resent", nil)
	s.end("resent", nil, false)             // never dispatched
	s.add("resent", now.Add(5*time.Minute)) // the resend
	s.add("c", now.Add(idTTL+3*time.Second))
	if s.has("a") || s.has("b") {
		t.Errorf("a %v, b %v remembered past idTTL (b behind a retaken ID's first place)", s.has("a"), s.has("b"))
	}
	if !s.has("resent") {
		t.Error("the resent ID was forgotten with its first place, before its own idTTL")
	}
	s.add("d", now.Add(5*time.Minute+idTTL+time.Second))
	if s.has("resent") || len(s.order) != 2 {
		t.Errorf("after the resend's idTTL: resent remembered %v, %d places kept; want false, 2 (c, d)", s.has("resent"), len(s.order))
	}
}

// shrinkStream counts Shrink calls.
type shrinkStream struct {
	readerStream
	shrunk *int
}

func (s shrinkStream) Shrink() { *s.shrunk++ }

// TestPeekedStreamShrinks: tunnel.Shrink reaches the transport's stream
// through the peeked wrapper the dispatcher gets (it did not: the relay
// kept every stream's receive buffer, the size of its request body).
func TestPeekedStreamShrinks(t *testing.T) {
	var n int
	br := peekPool.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(nil))
	ps := newPeekedStream(shrinkStream{readerStream{r: bytes.NewReader(nil)}, &n}, br)
	tunnel.Shrink(ps)
	if n != 1 {
		t.Fatalf("Shrink reached the stream %d times; want 1", n)
	}
	tunnel.Shrink(readerStream{}) // a stream without Shrink: nothing happens
}

// writesStream records how its writes came: "lazy" for WriteLazy (when
// lazy), "plain" for Write.
type writesStream struct {
	tunnel.Stream // nil: only the writes are called
	got           *[]string
}

func (s writesStream) Write(p []byte) (int, error) {
	*s.got = append(*s.got, "plain")
	return len(p), nil
}

type lazyStream struct{ writesStream }

func (s lazyStream) WriteLazy(p []byte) (int, error) {
	*s.got = append(*s.got, "lazy")
	return len(p), nil
}

// TestPeekedStreamWritesLazily: the Dispatched frame, written through the
// peeked wrapper the dispatcher gets, reaches the transport's WriteLazy
// where it has one, and its Write where it has none.
func TestPeekedStreamWritesLazily(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   func(got *[]string) tunnel.Stream
		want string
	}{
		{"lazy transport", func(got *[]string) tunnel.Stream { return lazyStream{writesStream{got: got}} }, "lazy"},
		{"plain transport", func(got *[]string) tunnel.Stream { return writesStream{got: got} }, "plain"},
	} {
		var got []string
		br := peekPool.Get().(*bufio.Reader)
		br.Reset(bytes.NewReader(nil))
		ps := newPeekedStream(tc.st(&got), br)
		if err := proto.NewWriter(ps).WriteDispatched(); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: writes %v; want [%s]", tc.name, got, tc.want)
		}
	}
}

// has reports whether id is taken.
func (s *idSet) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.seen[id]
	return ok
}
