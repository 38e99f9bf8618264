package usage

import (
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// bigEvent is one Responses response.completed event whose output makes it
// size bytes long, with its usage at the end, as the API sends it.
func bigEvent(size int) string {
	head := "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"output\":[{\"text\":\""
	tail := "\"}],\"usage\":{\"input_tokens\":8,\"output_tokens\":5}}}\n\n"
	return head + strings.Repeat("x", size-len(head)-len(tail)) + tail
}

// TestMeterLargeEventLinearAndBounded: an event arriving in many small
// pieces is searched once (it used to be rescanned from its start on each
// piece: quadratic), and a meter holds at most maxHeld plus a tail of it
// (it used to hold up to 8 MiB per stream), yet still reads its usage.
func TestMeterLargeEventLinearAndBounded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		piece int
	}{
		{"small pieces", 256 << 10, 16},
		{"larger than maxHeld", 3 * maxHeld, 4 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMeter(llmapi.OpenAI, true, false)
			body := bigEvent(tc.size) + "data: [DONE]\n\n"
			most := 0
			for i := 0; i < len(body); i += tc.piece {
				if out := m.Feed([]byte(body[i:min(i+tc.piece, len(body))])); len(out) != min(tc.piece, len(body)-i) {
					t.Fatalf("piece at %d changed", i)
				}
				most = max(most, cap(m.held))
			}
			if m.scans > 2*len(body) {
				t.Errorf("searched %d bytes for event ends in a %d-byte body: not linear", m.scans, len(body))
			}
			if most > maxHeld+2*tailSize+tc.piece {
				t.Errorf("held up to %d bytes of one event; bound %d", most, maxHeld+2*tailSize)
			}
			if u := m.Result(0); u != (Usage{Input: 8, Output: 5}) {
				t.Errorf("usage %+v", u)
			}
		})
	}
}

// BenchmarkMeterLargeEvent feeds one 1 MiB event in 4 KiB pieces: the
// work per byte must not grow with the event.
func BenchmarkMeterLargeEvent(b *testing.B) {
	body := []byte(bigEvent(1 << 20))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		m := NewMeter(llmapi.OpenAI, true, false)
		for i := 0; i < len(body); i += 4 << 10 {
			m.Feed(body[i:min(i+4<<10, len(body))])
		}
	}
}
