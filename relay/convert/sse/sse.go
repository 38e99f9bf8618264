// Package sse reads server-sent events and the Gemini API's incrementally
// delivered JSON array, one event at a time, without bufio.Scanner: a single
// line may be many megabytes (base64 images), and the only limit is an
// explicit per-event cap that turns a runaway stream into a clean error.
package sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxEvent is the per-event size cap used when none is given.
const DefaultMaxEvent = 64 << 20

// ErrTooLong reports an event (or a line) over the reader's cap.
var ErrTooLong = errors.New("sse: event exceeds the size limit")

// Event is one dispatched SSE event. Data lines are joined with "\n".
type Event struct {
	Name string // the "event:" field, or ""
	Data []byte // valid until the next call to Next
}

// Reader parses an SSE stream. The zero value is not usable; see NewReader.
type Reader struct {
	r          io.Reader
	buf        []byte
	start, end int
	max        int
	eof        bool
	data       []byte
	name       string
	pending    bool // a field was seen since the last dispatch
	sawData    bool // a data line was seen since the last dispatch
}

// NewReader returns a Reader over r; max caps one event's size (zero means
// DefaultMaxEvent).
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxEvent
	}
	return &Reader{r: r, buf: make([]byte, 4096), max: max}
}

// Next returns the next event. It returns io.EOF after a stream that ended on
// an event boundary and io.ErrUnexpectedEOF when it ended inside an event.
// Lines may end in "\n", "\r\n" or "\r"; comments (":…") and the id and
// retry fields are skipped; "data:" with or without a space is accepted.
func (r *Reader) Next() (Event, error) {
	r.data, r.name, r.pending, r.sawData = r.data[:0], "", false, false
	for {
		line, err := r.line()
		if err != nil {
			if err == io.EOF && r.pending {
				err = io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if r.pending {
				return Event{Name: r.name, Data: r.data}, nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		value = bytes.TrimPrefix(value, []byte{' '})
		switch string(field) {
		case "data":
			if r.sawData { // "data:\ndata:x" is "\nx", as the spec says
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, value...)
			r.pending, r.sawData = true, true
		case "event":
			r.name = string(value)
			r.pending = true
		}
		if len(r.data) > r.max {
			return Event{}, ErrTooLong
		}
	}
}

// line returns the next line without its terminator. The slice is valid
// until the next call.
func (r *Reader) line() ([]byte, error) {
	scanned := 0
	for {
		window := r.buf[r.start:r.end]
		if i := bytes.IndexAny(window[scanned:], "\r\n"); i >= 0 {
			i += scanned
			if window[i] == '\r' && i+1 == len(window) && !r.eof {
				// "\r" at the end of the buffer: "\r\n" or a lone "\r"?
				scanned = i
				if err := r.fill(); err != nil {
					return nil, err
				}
				continue
			}
			line := window[:i]
			skip := i + 1
			if window[i] == '\r' && i+1 < len(window) && window[i+1] == '\n' {
				skip++
			}
			r.start += skip
			return line, nil
		}
		scanned = len(window)
		if r.eof {
			if len(window) == 0 {
				return nil, io.EOF
			}
			r.start = r.end
			return window, nil // a last line without terminator
		}
		if len(window) > r.max {
			return nil, ErrTooLong
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// fill reads more input, compacting or growing the buffer first.
func (r *Reader) fill() error {
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.start, r.end = 0, n
	}
	if r.end == len(r.buf) {
		r.buf = append(r.buf, make([]byte, len(r.buf))...)
	}
	n, err := r.r.Read(r.buf[r.end:])
	r.end += n
	if err == io.EOF {
		r.eof = true
		return nil
	}
	return err
}

// ArrayReader reads the elements of one top-level JSON array as they arrive:
// the Gemini API's streamGenerateContent without alt=sse.
type ArrayReader struct {
	lim     *limited
	dec     *json.Decoder
	started bool
	done    bool
}

// NewArrayReader returns an ArrayReader over r; max caps one element's size
// (zero means DefaultMaxEvent).
func NewArrayReader(r io.Reader, max int) *ArrayReader {
	if max <= 0 {
		max = DefaultMaxEvent
	}
	lim := &limited{r: r, max: max, left: max}
	return &ArrayReader{lim: lim, dec: json.NewDecoder(lim)}
}

// Next returns the next element. It returns io.EOF after the closing "]" and
// io.ErrUnexpectedEOF if the input ends before it.
func (a *ArrayReader) Next() (json.RawMessage, error) {
	if a.done {
		return nil, io.EOF
	}
	if !a.started {
		tok, err := a.dec.Token()
		if err != nil {
			return nil, eofAsUnexpected(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return nil, fmt.Errorf("sse: want a JSON array, got %v", tok)
		}
		a.started = true
	}
	a.lim.left = a.lim.max
	if !a.dec.More() {
		if _, err := a.dec.Token(); err != nil {
			return nil, eofAsUnexpected(err)
		}
		a.done = true
		return nil, io.EOF
	}
	var raw json.RawMessage
	if err := a.dec.Decode(&raw); err != nil {
		return nil, eofAsUnexpected(err)
	}
	return raw, nil
}

func eofAsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// limited fails once more than max bytes are read for one element, which
// bounds the json.Decoder's buffer.
type limited struct {
	r         io.Reader
	max, left int
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, ErrTooLong
	}
	if len(p) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= n
	return n, err
}
