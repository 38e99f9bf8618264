package proto

import (
	"io"
	"net/http"
	"testing"
)

// Benchmarks of the frames every request and every stream event cross:
// go test -run '^$' -bench . -benchmem ./proto

func benchRequest() *RequestHeader {
	return &RequestHeader{ID: "req_0123456789abcdef01234567", Family: "openai", Method: "POST",
		Path: "/v1/chat/completions", Header: http.Header{"Content-Type": {"application/json"},
			"User-Agent": {"OpenAI/Python 1.54.0"}, "Accept": {"application/json"}, "X-Stainless-Lang": {"python"}},
		BodyLen: 120}
}

func BenchmarkRequestEncode(b *testing.B) {
	w := NewWriter(io.Discard)
	h := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		_ = w.WriteRequest(h)
	}
}

func BenchmarkRequestDecode(b *testing.B) {
	p := benchRequest().Append(nil)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ParseRequestHeader(p)
	}
}

func BenchmarkResponseDecode(b *testing.B) {
	h := &ResponseHeader{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"},
		"Date": {"Sat, 05 Dec 2026 16:00:00 GMT"}, "X-Request-Id": {"abc"}, "Openai-Processing-Ms": {"12"}}}
	p := h.Append(nil)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ParseResponseHeader(p)
	}
}

// BenchmarkEventRoundTrip is one SSE event written as a Data frame and read
// back as a body chunk: the per-event path on both sides of the tunnel.
func BenchmarkEventRoundTrip(b *testing.B) {
	event := []byte(`data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":" tok7"}}]}` + "\n\n")
	pipe := &loopReader{frame: AppendFrame(nil, FrameData, event)}
	w := NewWriter(io.Discard)
	r := NewReader(pipe)
	defer r.Release()
	body := r.Body()
	b.SetBytes(int64(len(event)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = w.Write(event)
		_, _ = body.Chunk()
	}
}
