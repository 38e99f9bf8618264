package dispatch

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// genaiTokens splits an SSE stream the way google-genai does (on "\n\n",
// else "\r\n\r\n", dropping one trailing "\r"); every token must be empty
// or a data: line, or the SDK fails the stream.
func genaiTokens(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i, n := bytes.Index(b, []byte("\n\n")), 2
		if i < 0 {
			i, n = bytes.Index(b, []byte("\r\n\r\n")), 4
		}
		if i < 0 {
			i, n = len(b), 0
		}
		out = append(out, strings.TrimSuffix(string(b[:i]), "\r"))
		b = b[i+n:]
	}
	return out
}

// TestGeminiKeepAlives proves any number of keep-alives between Gemini
// events, with either line ending, leaves a stream google-genai parses.
func TestGeminiKeepAlives(t *testing.T) {
	for _, eol := range []string{"\r\n", "\n"} {
		for pings := 0; pings <= 3; pings++ {
			p := &pump{x: &exchange{}, ping: pingFor("gemini", "text/event-stream")}
			var stream []byte
			emit := func(b []byte) { p.tailOf(b); stream = append(stream, b...) }
			emit([]byte("data: {\"a\":1}" + eol + eol))
			for range pings {
				if !p.atBoundary() {
					t.Fatalf("eol %q: not at a boundary after an event", eol)
				}
				emit(p.keepAlive())
			}
			emit([]byte("data: {\"b\":2}" + eol + eol))
			for _, tok := range genaiTokens(stream) {
				if tok != "" && !strings.HasPrefix(tok, "data:") {
					t.Errorf("eol %q, %d pings: genai would reject %q in %q", eol, pings, tok, stream)
				}
			}
		}
	}
}

// TestReadAllSized: the body is read whole whatever the declaration, and
// a right one leaves no spare capacity beyond the byte for the EOF read.
func TestReadAllSized(t *testing.T) {
	body := strings.Repeat("x", 100_000)
	for _, tc := range []struct {
		name     string
		declared int64
		maxCap   int
	}{
		{"declared", 100_000, 100_001},
		{"unknown", -1, 0},
		{"too small", 10, 0},
		{"too large", 200_000, 200_001},
		{"empty body declared", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAllSized(&pieces{s: body, n: 4096}, tc.declared)
			if err != nil || string(got) != body {
				t.Fatalf("read %d bytes, err %v", len(got), err)
			}
			if tc.maxCap > 0 && cap(got) > tc.maxCap {
				t.Fatalf("capacity %d; want at most %d", cap(got), tc.maxCap)
			}
		})
	}
}

// pieces reads s at most n bytes at a time.
type pieces struct {
	s string
	n int
}

func (p *pieces) Read(b []byte) (int, error) {
	if p.s == "" {
		return 0, io.EOF
	}
	k := copy(b[:min(len(b), p.n)], p.s)
	p.s = p.s[k:]
	return k, nil
}
