package forward

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/strait/strait/proto"
)

// mergeAction is one step of a relay's scripted writes on a hedged
// request's two legs: bytes [from, to) of the leg's content written on
// leg, or the leg's end (to == -1).
type mergeAction struct {
	leg      int
	from, to int
}

const legEnd = -1

// TestMergedAnswer: the merged answer is the answer, byte for byte, however
// the two legs' bytes interleave, whichever leg stops or breaks midway, and
// whether the second copy is mirrored or refused (a relay that predates
// mirrors, or a draining one).
func TestMergedAnswer(t *testing.T) {
	answer := answerBytes(40)
	dup := endBytes(proto.CodeDuplicate)
	away := endBytes(proto.CodeGoingAway)
	half := len(answer) / 2
	n := len(answer)
	for _, tc := range []struct {
		name    string
		content [2][]byte // what each leg carries
		script  []mergeAction
		want    []byte // then io.EOF
	}{
		{"first leg whole, then the mirror", [2][]byte{answer, answer},
			[]mergeAction{{0, 0, n}, {0, 0, legEnd}, {1, 0, n}, {1, 0, legEnd}}, answer},
		{"interleaved", [2][]byte{answer, answer},
			[]mergeAction{{0, 0, 7}, {1, 0, half}, {0, 7, half + 3}, {1, half, n}, {1, 0, legEnd}, {0, half + 3, n}, {0, 0, legEnd}}, answer},
		{"first leg stops midway, the mirror brings the rest", [2][]byte{answer, answer},
			[]mergeAction{{0, 0, half}, {1, 0, 3}, {0, 0, legEnd}, {1, 3, n}, {1, 0, legEnd}}, answer},
		{"mirror cut midway, the first leg goes on", [2][]byte{answer, answer},
			[]mergeAction{{1, 0, half}, {1, 0, legEnd}, {0, 0, n}, {0, 0, legEnd}}, answer},
		// Cut short: the answer's reader finds no End frame.
		{"both stop midway", [2][]byte{answer, answer},
			[]mergeAction{{1, 0, half}, {0, 0, 5}, {1, 0, legEnd}, {0, 0, legEnd}}, answer[:half]},
		{"second copy refused by an old relay", [2][]byte{answer, dup},
			[]mergeAction{{1, 0, len(dup)}, {1, 0, legEnd}, {0, 0, n}, {0, 0, legEnd}}, answer},
		{"first copy refused by an old relay", [2][]byte{dup, answer},
			[]mergeAction{{1, 0, half}, {0, 0, len(dup)}, {0, 0, legEnd}, {1, half, n}, {1, 0, legEnd}}, answer},
		{"both refused: the duplicate refusal tells most", [2][]byte{dup, away},
			[]mergeAction{{1, 0, len(away)}, {1, 0, legEnd}, {0, 0, len(dup)}, {0, 0, legEnd}}, dup},
		{"one broke before a byte, one refused draining", [2][]byte{nil, away},
			[]mergeAction{{0, 0, legEnd}, {1, 0, len(away)}, {1, 0, legEnd}}, away},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var relayEnds [2]net.Conn
			var legs [2]*leg
			for i := range legs {
				edgeEnd, relayEnd := net.Pipe()
				relayEnds[i] = relayEnd
				legs[i] = &leg{st: pipeStream{edgeEnd}}
			}
			m := newMergedAnswer(legs[0], legs[1])
			got := make(chan []byte, 1)
			readErr := make(chan error, 1)
			go func() {
				b, err := io.ReadAll(m)
				got <- b
				readErr <- err
			}()
			for _, a := range tc.script {
				if a.to == legEnd {
					relayEnds[a.leg].Close()
					continue
				}
				// net.Pipe's Write returns once the leg's reader took it all.
				if _, err := relayEnds[a.leg].Write(tc.content[a.leg][a.from:a.to]); err != nil {
					t.Fatalf("writing leg %d: %v", a.leg, err)
				}
			}
			b, err := <-got, <-readErr
			if !bytes.Equal(b, tc.want) {
				t.Errorf("merged answer is %d bytes %q; want %d bytes %q", len(b), b, len(tc.want), tc.want)
			}
			if err != nil {
				t.Errorf("merged answer ended with %v; want io.EOF", err)
			}
			m.close()
			for _, l := range legs {
				l.st.Close()
			}
		})
	}
}

// TestMergedAnswerHoldsBackLeadingLeg: the leg ahead stops reading once
// mergeQueueMax bytes wait for a client that does not read, so a slow
// client holds the relay back as it does with one stream; the lagging leg
// reads on until it catches up.
func TestMergedAnswerHoldsBackLeadingLeg(t *testing.T) {
	edgeA, relayA := net.Pipe()
	edgeB, relayB := net.Pipe()
	a, b := &leg{st: pipeStream{edgeA}}, &leg{st: pipeStream{edgeB}}
	m := newMergedAnswer(a, b)
	defer func() {
		m.close()
		edgeA.Close()
		edgeB.Close()
	}()
	content := bytes.Repeat([]byte{byte(proto.FrameData)}, mergeQueueMax+3*mergeReadSize)
	// mergeQueueMax bytes go through with nobody reading...
	fits := mergeQueueMax
	if _, err := relayA.Write(content[:fits]); err != nil {
		t.Fatal(err)
	}
	// ...and the lagging leg still delivers as much, read and let go.
	if _, err := relayB.Write(content[:fits]); err != nil {
		t.Fatal(err)
	}
	// The leading leg reads no more: a write on it waits for the client.
	wrote := make(chan struct{})
	go func() {
		_, _ = relayA.Write(content[fits : fits+1])
		close(wrote)
	}()
	buf := make([]byte, len(content))
	n, err := io.ReadFull(m, buf[:fits])
	if err != nil || !bytes.Equal(buf[:n], content[:fits]) {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	select {
	case <-wrote:
	default:
		// Reading is what lets the leading leg go on.
		if _, err := io.ReadFull(m, buf[:1]); err != nil {
			t.Fatal(err)
		}
		<-wrote
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.total != int64(fits+1) {
		t.Fatalf("merged %d bytes; want %d", m.total, fits+1)
	}
}

// answerBytes is a whole streamed answer as a relay writes it.
func answerBytes(events int) []byte {
	var b bytes.Buffer
	w := proto.NewWriter(&b)
	_ = w.WriteDispatched()
	_ = w.WriteResponse(&proto.ResponseHeader{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}})
	for i := range events {
		_, _ = w.Write([]byte("data: {\"n\":" + strings.Repeat("7", i%5+1) + "}\n\n"))
	}
	_ = w.WriteEnd(proto.End{})
	return b.Bytes()
}

func endBytes(code proto.Code) []byte {
	var b bytes.Buffer
	_ = proto.NewWriter(&b).WriteEnd(proto.End{Code: code, Message: code.String()})
	return b.Bytes()
}

// BenchmarkMergedAnswer is one SSE event's way through a hedged answer's
// two legs (each event written on both, as a mirroring relay does) against
// one leg alone: what merging adds per event at the edge.
func BenchmarkMergedAnswer(b *testing.B) {
	// An event's size; the first byte makes the legs' first frames answers.
	event := append([]byte{byte(proto.FrameData)}, bytes.Repeat([]byte("x"), 119)...)
	for _, legs := range []int{1, 2} {
		b.Run(map[int]string{1: "single", 2: "merged"}[legs], func(b *testing.B) {
			var relayEnds []net.Conn
			var r io.Reader
			var m *mergedAnswer
			var ls [2]*leg
			for i := range legs {
				edgeEnd, relayEnd := net.Pipe()
				relayEnds = append(relayEnds, relayEnd)
				ls[i] = &leg{st: pipeStream{edgeEnd}}
				r = edgeEnd
			}
			if legs == 2 {
				m = newMergedAnswer(ls[0], ls[1])
				r = m
			}
			// The relay's side: the event on every leg, as it writes it, one
			// event at a time (a stream's events come apart, not in a flood).
			done := make(chan struct{})
			ticks := make([]chan struct{}, len(relayEnds))
			for i, c := range relayEnds {
				ticks[i] = make(chan struct{}, 1)
				ticks[i] <- struct{}{}
				go func() {
					defer func() { done <- struct{}{} }()
					for range b.N {
						<-ticks[i]
						if _, err := c.Write(event); err != nil {
							return
						}
					}
				}()
			}
			buf := make([]byte, len(event))
			b.SetBytes(int64(len(event)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
				for _, t := range ticks {
					select {
					case t <- struct{}{}:
					default: // that leg has not written its copy yet
					}
				}
			}
			b.StopTimer()
			for _, t := range ticks {
				close(t) // a writer left waiting goes on, and fails on its closed pipe
			}
			if m != nil {
				m.close()
			}
			for i, c := range relayEnds {
				c.Close()
				ls[i].st.Close()
				<-done
			}
		})
	}
}
