// Server-sent events: one framing for both sides. EventEnd finds where an
// event ends in bytes as they arrive (the edge's usage meter, which passes
// every byte on); Reader reads events from a stream (the relay's converter).
// Neither uses bufio.Scanner: a single line may be many megabytes (base64
// images), and the only limit is an explicit per-event cap that turns a
// runaway stream into a clean error. Lines end in "\n", "\r\n" or a lone
// "\r", as the SSE specification says, everywhere.

package llmapi

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

// EventEnd returns the index just past the blank line that ends the first
// event in b, searching from from (a line start, or an earlier call's
// resume), or -1 and resume: where the search can restart once b has
// grown, so a long event is searched once however finely it arrives. A
// "\r" at the end of b may be the first half of "\r\n", so it is decided
// only when more arrives or atEOF. Blank lines at the very start of b end
// no event (they dispatch nothing) and stay with the event after them.
func EventEnd(b []byte, from int, atEOF bool) (end, resume int) {
	for i := from; i < len(b); {
		n := bytes.IndexAny(b[i:], "\r\n")
		if n < 0 {
			break
		}
		i += n
		j, ok := lineBreak(b, i, atEOF)
		if !ok || j == len(b) {
			if atEOF {
				return -1, len(b)
			}
			return -1, i
		}
		if b[j] == '\r' || b[j] == '\n' { // a blank line
			k, ok := lineBreak(b, j, atEOF)
			if !ok {
				return -1, i
			}
			return k, k
		}
		i = j
	}
	return -1, len(b)
}

// EndsEvent reports whether b, a stream's bytes so far, ends with the
// blank line that ends an event ("\n\n", "\r\n\r\n" or "\r\r"), so that
// bytes appended to it start a new event: where a keep-alive may go, or
// where a recorded stream is whole.
func EndsEvent(b []byte) bool {
	n := len(b)
	return n >= 2 && (string(b[n-2:]) == "\n\n" || string(b[n-2:]) == "\r\r") ||
		n >= 4 && string(b[n-4:]) == "\r\n\r\n"
}

// EndsStream reports whether b, an event stream of family f, ends with the
// event after which f's streams have nothing more to say: OpenAI's
// "[DONE]" (or the Responses API's response.completed), Anthropic's
// message_stop, Gemini's last chunk (the one with a finishReason; Gemini
// sends no end marker). An answer cut before it is not whole, even if its
// usage was reported (Anthropic reports it in message_delta, OpenAI in the
// chunk before "[DONE]").
func EndsStream(f Family, b []byte) bool {
	r := NewReader(bytes.NewReader(b), len(b)+1)
	var name string
	var data []byte
	for {
		ev, err := r.Next()
		if err != nil {
			break
		}
		name, data = ev.Name, ev.Data
	}
	switch f {
	case OpenAI:
		return string(data) == "[DONE]" || name == "response.completed"
	case Anthropic:
		return name == "message_stop"
	case Gemini:
		return bytes.Contains(data, []byte(`"finishReason"`))
	}
	return false
}

// lineBreak is the index just past the line terminator at b[i]; ok is false
// for a "\r" that ends b before atEOF.
func lineBreak(b []byte, i int, atEOF bool) (int, bool) {
	if b[i] == '\n' {
		return i + 1, true
	}
	if i+1 < len(b) {
		if b[i+1] == '\n' {
			return i + 2, true
		}
		return i + 1, true
	}
	return i + 1, atEOF
}

// EventData is the data of one event as EventEnd framed it: its data lines
// joined with "\n", or nil when it has none. An event with one data line,
// nearly every event a provider sends, is answered without a copy: the
// result then shares ev's memory, and the caller must not modify it.
func EventData(ev []byte) []byte {
	if data, ok := singleData(ev); ok {
		return data
	}
	_, data, _ := eventFields(ev, nil)
	return data
}

// singleData returns the value of ev's only data line (nil when empty, as
// eventFields would), and false when ev has another number of data lines.
func singleData(ev []byte) (data []byte, ok bool) {
	n := 0
	eachField(ev, func(field, value []byte) bool {
		if string(field) == "data" {
			n++
			data = value
		}
		return n <= 1
	})
	if len(data) == 0 {
		data = nil
	}
	return data, n == 1
}

// eventFields reads one event: its "event:" name, its data lines joined
// with "\n" and appended to data, and whether it had a field at all (an
// event without one is not dispatched). Comments (":…"), the id and retry
// fields and unknown fields are skipped; "data:" with or without a space is
// accepted, and "data" alone is an empty data line.
func eventFields(ev, data []byte) (name string, out []byte, dispatch bool) {
	sawData := false
	eachField(ev, func(field, value []byte) bool {
		switch string(field) {
		case "data":
			if sawData { // "data:\ndata:x" is "\nx", as the spec says
				data = append(data, '\n')
			}
			data = append(data, value...)
			sawData, dispatch = true, true
		case "event":
			name, dispatch = string(value), true
		}
		return true
	})
	return name, data, dispatch
}

// eachField calls f with each field of ev, comments skipped, and the value
// without its one optional leading space, while f returns true.
func eachField(ev []byte, f func(field, value []byte) bool) {
	for len(ev) > 0 {
		var line []byte
		line, ev = nextLine(ev)
		if len(line) == 0 || line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		if !f(field, bytes.TrimPrefix(value, []byte{' '})) {
			return
		}
	}
}

// nextLine splits the first line off b, without its terminator.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexAny(b, "\r\n")
	if i < 0 {
		return b, nil
	}
	j, _ := lineBreak(b, i, true)
	return b[:i], b[j:]
}

// Reader parses an SSE stream. The zero value is not usable; see NewReader.
type Reader struct {
	r          io.Reader
	buf        []byte
	start, end int
	scanned    int // of buf[start:end], where EventEnd resumes
	max        int
	eof        bool
	data       []byte
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
func (r *Reader) Next() (Event, error) {
	for {
		window := r.buf[r.start:r.end]
		end, resume := EventEnd(window, r.scanned, r.eof)
		if end >= 0 {
			r.start, r.scanned = r.start+end, 0
			name, data, ok := eventFields(window[:end], r.data[:0])
			r.data = data
			if len(data) > r.max {
				return Event{}, ErrTooLong
			}
			if ok {
				return Event{Name: name, Data: data}, nil
			}
			continue
		}
		r.scanned = resume
		if r.eof {
			r.start, r.scanned = r.end, 0
			if _, _, ok := eventFields(window, nil); ok {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, io.EOF
		}
		if len(window) > r.max {
			return Event{}, ErrTooLong
		}
		if err := r.fill(); err != nil {
			return Event{}, err
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
