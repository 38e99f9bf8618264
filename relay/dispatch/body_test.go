package dispatch

import (
	"bytes"
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
