package proto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func sampleRequest() *RequestHeader {
	return &RequestHeader{
		ID: "req-1", Family: "openai", Provider: "deepseek", Method: "POST",
		Path: "/v1/chat/completions", RawQuery: "a=b",
		Header:  http.Header{"Content-Type": {"application/json"}, "X-Multi": {"1", "2"}},
		BodyLen: 1234, Model: "gpt-4o-mini",
	}
}

// TestRequestHeaderVersion1 decodes a header as an edge of protocol
// version 1 encoded it (bytes written out by hand, not by Append): a relay
// must keep reading it during a rolling upgrade, and must know that it
// carries no model.
func TestRequestHeaderVersion1(t *testing.T) {
	p := []byte{1, 1, 'r', 6, 'o', 'p', 'e', 'n', 'a', 'i', 0, 4, 'P', 'O', 'S', 'T', 3, '/', 'v', '1', 0,
		1, 4, 'X', '-', 'A', 'b', 1, 1, 'c',
		4} // BodyLen 2, zigzag
	h, err := ParseRequestHeader(p)
	want := &RequestHeader{ID: "r", Family: "openai", Method: "POST", Path: "/v1",
		Header: http.Header{"X-Ab": {"c"}}, BodyLen: 2, NoModel: true}
	if err != nil || !reflect.DeepEqual(h, want) {
		t.Fatalf("got %+v, %v", h, err)
	}
	if again := h.Append(nil); !bytes.Equal(again, p) {
		t.Errorf("re-encoded as % x, want % x", again, p)
	}
	if _, err := ParseRequestHeader(append(p, 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("version 1 with a model field: %v, want ErrMalformed", err)
	}
}

func TestRequestHeaderRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		h    *RequestHeader
	}{
		{"full", sampleRequest()},
		{"empty header, unknown length", &RequestHeader{Method: "GET", Path: "/v1/models", Header: http.Header{}, BodyLen: -1}},
		{"version 1", &RequestHeader{Method: "GET", Path: "/v1/models", Header: http.Header{}, NoModel: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequestHeader(tt.h.Append(nil))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.h) {
				t.Fatalf("got %+v, want %+v", got, tt.h)
			}
		})
	}
}

func TestResponseHeaderRoundTrip(t *testing.T) {
	h := &ResponseHeader{Status: 429, Header: http.Header{"Retry-After": {"3"}}}
	got, err := ParseResponseHeader(h.Append(nil))
	if err != nil || !reflect.DeepEqual(got, h) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := sampleRequest().Append(nil)
	tests := []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"bad version", append([]byte{99}, good[1:]...)},
		{"truncated", good[:len(good)-3]},
		{"trailing", append(append([]byte{}, good...), 0)},
		{"forged count", []byte{Version, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseRequestHeader(tt.p); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := ParseResponseHeader((&ResponseHeader{Status: 7}).Append(nil)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("status 7 accepted: %v", err)
	}
}

func TestFrameLimit(t *testing.T) {
	b := AppendFrameHeader(nil, FrameData, MaxDataFrame+1)
	_, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)), nil)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
}

// TestStreamRoundTrip writes a whole exchange through Writer and reads it
// back with Reader, including a body larger than one Data frame.
func TestStreamRoundTrip(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), MaxDataFrame/5) // 2 frames
	var buf bytes.Buffer
	w := NewWriter(&buf)
	must(t, w.WriteRequest(sampleRequest()))
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	must(t, w.WriteEnd(End{}))
	must(t, w.WriteDispatched())
	must(t, w.WriteEnd(End{Code: CodeUpstreamBroken, Message: "eof"}))

	r := NewReader(&buf)
	defer r.Release()
	typ, p, err := r.Next()
	if err != nil || typ != FrameRequest {
		t.Fatalf("first frame %v %v", typ, err)
	}
	if h, err := ParseRequestHeader(p); err != nil || h.Path != "/v1/chat/completions" {
		t.Fatalf("header %+v %v", h, err)
	}
	got, err := io.ReadAll(r.Body())
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("body: %d bytes, err %v", len(got), err)
	}
	if typ, _, _ := r.Next(); typ != FrameDispatched {
		t.Fatalf("got %v, want dispatched", typ)
	}
	_, err = io.ReadAll(r.Body())
	var end *End
	if !errors.As(err, &end) || end.Code != CodeUpstreamBroken {
		t.Fatalf("err = %v, want upstream_broken End", err)
	}
	if _, err := io.ReadAll(r.Body()); err != io.ErrUnexpectedEOF {
		t.Fatalf("missing End: err = %v, want ErrUnexpectedEOF", err)
	}
}

func TestBodyRejectsUnexpectedFrame(t *testing.T) {
	var buf bytes.Buffer
	must(t, NewWriter(&buf).WriteRequest(sampleRequest()))
	r := NewReader(&buf)
	defer r.Release()
	if _, err := io.ReadAll(r.Body()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
}

func TestEndError(t *testing.T) {
	e := &End{Code: CodeNoRoute, Message: "no provider for gemini"}
	if !strings.Contains(e.Error(), "no_route") || !strings.Contains(e.Error(), "gemini") {
		t.Fatal(e.Error())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
