package dispatch

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/strait/strait/proto"
)

// TestFramesThatAreReadyTogetherLeaveTogether: the dispatcher sends the
// Response header with the first body bytes, and the last body bytes with
// the End, in one stream write each, so a short answer crosses the tunnel
// in two writes (Dispatched first, before the upstream call) instead of
// four.
func TestFramesThatAreReadyTogetherLeaveTogether(t *testing.T) {
	const (
		disp = proto.FrameDispatched
		resp = proto.FrameResponse
		data = proto.FrameData
		end  = proto.FrameEnd
	)
	tests := []struct {
		name   string
		path   string
		body   string
		header http.Header
		check  func(writes [][]proto.FrameType) error
	}{
		{"unary answer", "/v1/chat/completions", chat("gpt-4o", false), nil, func(w [][]proto.FrameType) error {
			return wantWrites(w, [][]proto.FrameType{{disp}, {resp, data, end}})
		}},
		{"stream: header with the first event", "/v1/chat/completions", chat("gpt-4o", true), http.Header{"X-Fake-Interval-Ms": {"5"}},
			func(w [][]proto.FrameType) error {
				if len(w) < 3 {
					return fmt.Errorf("writes %v: want Dispatched, Response with data, ...", w)
				}
				if err := wantWrites(w[:2], [][]proto.FrameType{{disp}, {resp, data}}); err != nil {
					return err
				}
				if last := w[len(w)-1]; last[len(last)-1] != end {
					return fmt.Errorf("last write %v does not end with End", last)
				}
				return nil
			}},
		// A bulk body moves the pump from its small read buffer to its big
		// one; every byte must still arrive, in order.
		{"bulk answer", "/v1/embeddings",
			`{"model":"text-embedding-3-small","input":"bulk","encoding_format":"base64","dimensions":300000}`, nil,
			func(w [][]proto.FrameType) error {
				if len(w) < 3 || w[1][0] != resp || w[len(w)-1][len(w[len(w)-1])-1] != end {
					return fmt.Errorf("writes %v", w)
				}
				return nil
			}},
	}
	r := newRig(t, rigOptions{keys: []string{"k1"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := r.do("openai", tt.path, tt.header, tt.body)
			if res.status != 200 || res.end.Code != proto.CodeOK || len(res.body) == 0 {
				t.Fatalf("status %d end %v body %q", res.status, res.end, res.body)
			}
			if res.header.Get("Content-Type") == "application/json" && !json.Valid(res.body) {
				t.Errorf("%d bytes of JSON that does not parse", len(res.body))
			}
			if err := tt.check(r.writes.get()); err != nil {
				t.Error(err)
			}
		})
	}
}

func wantWrites(got, want [][]proto.FrameType) error {
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("writes %v, want %v", got, want)
	}
	return nil
}
