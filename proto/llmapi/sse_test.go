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
