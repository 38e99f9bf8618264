package dispatch

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

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
		// The provider sends the whole body, then ends the response a
		// moment later: the body's length says the bytes are the last, and
		// they wait for the End.
		{"unary answer, ended late", "/v1/chat/completions", chat("gpt-4o", false), http.Header{"X-Fake-Late-End": {"1"}},
			func(w [][]proto.FrameType) error {
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
	for _, h2 := range []bool{false, true} {
		var called atomic.Value
		r := newRig(t, rigOptions{keys: []string{"k1"}, http2: h2, upstream: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				called.Store(req.Proto)
				if req.Header.Get("X-Fake-Late-End") == "" {
					h.ServeHTTP(w, req)
					return
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				maps.Copy(w.Header(), rec.Header())
				w.Header().Set("Content-Length", strconv.Itoa(rec.Body.Len()))
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				w.(http.Flusher).Flush()
				time.Sleep(50 * time.Millisecond)
			})
		}})
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s, upstream HTTP/2 %v", tt.name, h2), func(t *testing.T) {
				res := r.do("openai", tt.path, tt.header, tt.body)
				if res.status != 200 || res.end.Code != proto.CodeOK || len(res.body) == 0 {
					t.Fatalf("status %d end %v body %q", res.status, res.end, res.body)
				}
				if res.header.Get("Content-Type") == "application/json" && !json.Valid(res.body) {
					t.Errorf("%d bytes of JSON that does not parse", len(res.body))
				}
				if want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]; called.Load() != want {
					t.Fatalf("the provider was called over %v, want %s", called.Load(), want)
				}
				if err := tt.check(r.writes.get()); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

func wantWrites(got, want [][]proto.FrameType) error {
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("writes %v, want %v", got, want)
	}
	return nil
}
