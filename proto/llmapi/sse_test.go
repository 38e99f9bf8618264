package llmapi

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t *testing.T, r *Reader) ([]Event, error) {
	t.Helper()
	var out []Event
	for {
		ev, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, Event{Name: ev.Name, Data: bytes.Clone(ev.Data)})
	}
}

func TestReader(t *testing.T) {
	cases := []struct {
		name, in string
		want     []Event
		wantErr  error
	}{
		{"lf", "data: a\n\ndata: b\n\n", []Event{{Data: []byte("a")}, {Data: []byte("b")}}, io.EOF},
		{"crlf and names", "event: ping\r\ndata: {}\r\n\r\n", []Event{{Name: "ping", Data: []byte("{}")}}, io.EOF},
		{"lone cr", "data:x\rdata:y\r\r", []Event{{Data: []byte("x\ny")}}, io.EOF},
		{"comments and id", ": keep-alive\nid: 7\nretry: 10\ndata: z\n\n", []Event{{Data: []byte("z")}}, io.EOF},
		{"empty data lines", "data:\ndata: x\n\n", []Event{{Data: []byte("\nx")}}, io.EOF},
		{"blank lines only", "\n\n\r\n", nil, io.EOF},
		{"truncated event", "data: a\n\ndata: {\"par", []Event{{Data: []byte("a")}}, io.ErrUnexpectedEOF},
		{"unknown fields", "foo: bar\n\n", nil, io.EOF},
		{"cr only, names", "event: a\rdata: 1\r\revent: b\rdata: 2\r\r", []Event{{Name: "a", Data: []byte("1")}, {Name: "b", Data: []byte("2")}}, io.EOF},
		{"crlf split events", "data: a\r\n\r\ndata: b\r\n\r\n", []Event{{Data: []byte("a")}, {Data: []byte("b")}}, io.EOF},
		{"trailing lone cr at eof ends the event", "data: a\n\r", []Event{{Data: []byte("a")}}, io.EOF},
		{"data without colon", "data\ndata: x\n\n", []Event{{Data: []byte("\nx")}}, io.EOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// One byte per read: no assumption that an event arrives whole.
			got, err := readAll(t, NewReader(iotest.OneByteReader(strings.NewReader(tc.in)), 0))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i].Name != tc.want[i].Name || !bytes.Equal(got[i].Data, tc.want[i].Data) {
					t.Fatalf("event %d = %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestReaderLongLine reads an 8 MiB data line (a base64 image), which
// bufio.Scanner's default 64 KiB token limit would refuse.
func TestReaderLongLine(t *testing.T) {
	big := strings.Repeat("A", 8<<20)
	r := NewReader(strings.NewReader("data: "+big+"\n\n"), 0)
	ev, err := r.Next()
	if err != nil || len(ev.Data) != len(big) {
		t.Fatalf("got %d bytes, %v", len(ev.Data), err)
	}
}

// TestReaderBounded: a line that never ends stops at the cap with
// ErrTooLong, holding at most about twice the cap in memory.
func TestReaderBounded(t *testing.T) {
	const limit = 1 << 16
	endless := io.MultiReader(strings.NewReader("data: "), neverEnding('x'))
	r := NewReader(endless, limit)
	_, err := r.Next()
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("err = %v, want ErrTooLong", err)
	}
	if cap(r.buf) > 4*limit {
		t.Fatalf("buffer grew to %d bytes for a %d cap", cap(r.buf), limit)
	}
	// Many data lines that add up past the cap are refused too.
	many := strings.Repeat("data: "+strings.Repeat("y", 1000)+"\n", 100)
	if _, err := NewReader(strings.NewReader(many), limit).Next(); !errors.Is(err, ErrTooLong) {
		t.Fatalf("err = %v, want ErrTooLong", err)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

func TestArrayReader(t *testing.T) {
	in := "[{\"a\":1}\r\n,\r\n{\"b\":[2]}\r\n]"
	r := NewArrayReader(iotest.OneByteReader(strings.NewReader(in)), 0)
	var got []string
	for {
		raw, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(raw))
	}
	if strings.Join(got, "|") != `{"a":1}|{"b":[2]}` {
		t.Fatalf("got %q", got)
	}
	for _, cut := range []string{"", "[", "[{\"a\":1}", "[{\"a\":1},"} {
		r := NewArrayReader(strings.NewReader(cut), 0)
		var err error
		for err == nil {
			_, err = r.Next()
		}
		if err == io.EOF {
			t.Errorf("%q: truncated array reported as complete", cut)
		}
	}
	if _, err := NewArrayReader(strings.NewReader(`{"not":"array"}`), 0).Next(); err == nil || err == io.EOF {
		t.Errorf("object accepted as array: %v", err)
	}
	endless := io.MultiReader(strings.NewReader(`[{"a":"`), neverEnding('x'))
	r = NewArrayReader(endless, 1<<16)
	if _, err := r.Next(); !errors.Is(err, ErrTooLong) {
		t.Fatalf("endless element: err = %v, want ErrTooLong", err)
	}
}

// FuzzReader: any input parses without panic into events whose data was
// present in the input, ending in EOF, ErrUnexpectedEOF or ErrTooLong.
func FuzzReader(f *testing.F) {
	f.Add([]byte("event: a\ndata: b\n\n"))
	f.Add([]byte("data: x\r\n\r\ndata: y\rdata:z\r\r: c\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), 1024)
		for {
			ev, err := r.Next()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrTooLong) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			for _, line := range bytes.Split(ev.Data, []byte("\n")) {
				if !bytes.Contains(in, line) {
					t.Fatalf("data %q not in input", line)
				}
			}
		}
	})
}

// TestEventEnd frames events the way the edge's meter sees them: bytes
// arriving in pieces, each byte searched once. Every line ending the SSE
// spec allows ends a line, and a "\r" at the end of what has arrived waits
// for the next byte, which may make it "\r\n".
func TestEventEnd(t *testing.T) {
	cases := []struct {
		name, in string
		events   []string // the framed events, in order
		rest     string   // what stays held, no event end in it
	}{
		{"lf", "data: a\n\ndata: b\n\n", []string{"data: a\n\n", "data: b\n\n"}, ""},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"data: a\r\n\r\n", "data: b\r\n\r\n"}, ""},
		{"cr", "data: a\r\rdata: b\r\rx", []string{"data: a\r\r", "data: b\r\r"}, "x"},
		{"cr last waits for eof", "data: a\r\r", nil, "data: a\r\r"},
		{"mixed", "data: a\n\r\ndata: b\r\n\ndata: c\r\r\n", []string{"data: a\n\r\n", "data: b\r\n\n", "data: c\r\r\n"}, ""},
		{"crlf is one line end", "data: a\r\ndata: b\r\n", nil, "data: a\r\ndata: b\r\n"},
		{"trailing cr waits", "data: a\r\n\r", nil, "data: a\r\n\r"},
		{"unfinished", "event: x\ndata: {\"a\"", nil, "event: x\ndata: {\"a\""},
		{"leading blank line stays", "\ndata: a\n\n", []string{"\ndata: a\n\n"}, ""},
	}
	for _, tc := range cases {
		for _, piece := range []int{1, 2, 3, len(tc.in)} {
			got, held, searched := frame([]byte(tc.in), piece)
			if strings.Join(got, "|") != strings.Join(tc.events, "|") || string(held) != tc.rest {
				t.Errorf("%s, %d-byte pieces: events %q rest %q, want %q rest %q", tc.name, piece, got, held, tc.events, tc.rest)
			}
			if searched > len(tc.in)+3*len(tc.in)/piece+3 {
				t.Errorf("%s, %d-byte pieces: searched %d bytes of %d", tc.name, piece, searched, len(tc.in))
			}
		}
	}
}

// frame feeds in to EventEnd in pieces of the given size, as the edge's
// meter does, and returns the events, what is left held, and how many bytes
// were searched in all.
func frame(in []byte, piece int) (events []string, held []byte, searched int) {
	scanned := 0
	for len(in) > 0 {
		n := min(piece, len(in))
		held, in = append(held, in[:n]...), in[n:]
		for {
			end, resume := EventEnd(held, scanned, false)
			if end < 0 {
				searched += len(held) - scanned
				scanned = resume
				break
			}
			searched += end - scanned
			events = append(events, string(held[:end]))
			held, scanned = held[end:], 0
		}
	}
	return events, held, searched
}

// TestEventEndAtEOF: at the end of the stream a trailing "\r" is a line end.
func TestEndsEvent(t *testing.T) {
	for in, want := range map[string]bool{
		"":                      false,
		"\n":                    false,
		"data: x\n":             false,
		"data: x\n\n":           true,
		"data: x\r\n\r\n":       true,
		"data: x\r\r":           true,
		"data: x\r\n":           false,
		"data: x\n\ndata: y":    false,
		"data: x\n\n: ping\n\n": true,
		"\x00\x00\n\n":          true, // a zeroed tail buffer that ends an event
	} {
		if got := EndsEvent([]byte(in)); got != want {
			t.Errorf("EndsEvent(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestEventEndAtEOF(t *testing.T) {
	if end, _ := EventEnd([]byte("data: a\r\r"), 0, true); end != len("data: a\r\r") {
		t.Errorf("end = %d", end)
	}
	if end, _ := EventEnd([]byte("data: a\r\r"), 0, false); end != -1 {
		t.Errorf("end = %d before EOF, want -1 (the \\r may be half of \\r\\n)", end)
	}
}

func TestEventData(t *testing.T) {
	cases := []struct{ ev, want string }{
		{"data: {\"a\":1}\n\n", `{"a":1}`},
		{"event: ping\r\ndata: x\r\ndata:y\r\n\r\n", "x\ny"},
		{"data: a\rdata: b\r\r", "a\nb"},
		{": comment\nid: 3\n\n", ""},
		{"data\n\n", ""},
	}
	for _, tc := range cases {
		if got := EventData([]byte(tc.ev)); string(got) != tc.want {
			t.Errorf("EventData(%q) = %q, want %q", tc.ev, got, tc.want)
		}
	}
}

// TestEventEndLongLine: a 16 MiB line (a base64 image) arriving in 4 KiB
// pieces is framed with each byte searched about once, not once per piece.
func TestEventEndLongLine(t *testing.T) {
	in := []byte("data: " + strings.Repeat("A", 16<<20) + "\r\n\r\n")
	events, held, searched := frame(in, 4096)
	if len(events) != 1 || len(held) != 0 {
		t.Fatalf("%d events, %d bytes left", len(events), len(held))
	}
	if searched > 17<<20 {
		t.Fatalf("searched %d bytes for a 16 MiB event", searched)
	}
}

// FuzzEventData checks EventData's copy-free answer for one data line
// against the general reading.
func FuzzEventData(f *testing.F) {
	for _, s := range []string{"data: x\n\n", "data:\n\n", "event: e\ndata: {}\r\n\r\n", "data: a\ndata: b\n\n", ": c\n\n", "data\n\n", "id: 1\ndata:  y\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, ev []byte) {
		_, want, _ := eventFields(ev, nil)
		if got := EventData(ev); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("EventData(%q) = %q, want %q", ev, got, want)
		}
	})
}

// TestEndsStream: a recorded stream is whole only with its family's last
// event, not at the usage that comes before it.
func TestEndsStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		family Family
		stream string
		whole  bool
	}{
		{"openai done", OpenAI, "data: {\"choices\":[]}\n\ndata: {\"usage\":{}}\n\ndata: [DONE]\n\n", true},
		{"openai at usage", OpenAI, "data: {\"choices\":[]}\n\ndata: {\"usage\":{}}\n\n", false},
		{"responses completed", OpenAI, "event: response.output_text.delta\ndata: {}\n\nevent: response.completed\ndata: {\"response\":{}}\n\n", true},
		{"anthropic stop", Anthropic, "event: message_delta\ndata: {\"usage\":{}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", true},
		{"anthropic at usage", Anthropic, "event: message_delta\ndata: {\"usage\":{}}\n\n", false},
		{"gemini last chunk", Gemini, "data: {\"candidates\":[{}]}\n\ndata: {\"candidates\":[{\"finishReason\":\"STOP\"}],\"usageMetadata\":{}}\r\n\r\n", true},
		{"gemini mid-stream", Gemini, "data: {\"candidates\":[{}],\"usageMetadata\":{}}\n\n", false},
		{"empty", OpenAI, "", false},
	} {
		if got := EndsStream(tc.family, []byte(tc.stream)); got != tc.whole {
			t.Errorf("%s: EndsStream = %v, want %v", tc.name, got, tc.whole)
		}
	}
}
