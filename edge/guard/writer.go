package guard

import (
	"cmp"
	"errors"
	"net/http"
	"strings"
)

// DefaultMaxWhole is Writer.MaxWhole when it is not set.
const DefaultMaxWhole = 32 << 20

// ErrWholeTooLarge is what Write returns once a whole answer outgrows
// Writer.MaxWhole.
var ErrWholeTooLarge = errors.New("guard: JSON answer too large to hold whole for restoring")

// Writer restores an answer on its way to the client: event by event for
// SSE, whole for JSON (held until complete, since a placeholder may sit
// anywhere in it). Other answers pass as they are. Close must be called
// after the last Write.
type Writer struct {
	http.ResponseWriter
	a *Answer
	// CutEvent is the in-band error event sent when output_words: cut
	// ends a streamed answer; CutWhole the status and body that replace a
	// whole one. Both are in the client's API format.
	CutEvent func() []byte
	CutWhole func() (int, []byte)
	// MaxWhole bounds the bytes of a whole answer held (0: DefaultMaxWhole),
	// which no flow control or client buffer budget sees. A larger answer
	// cannot be restored, and sent as it is it would carry the
	// placeholders and skip the word scan; so Write drops it and fails
	// with ErrWholeTooLarge, and Close sends TooLarge's status and body
	// (in the client's API format) instead: nothing of the answer has
	// gone out. Without TooLarge, a bare 502.
	MaxWhole int
	TooLarge func() (int, []byte)

	mode     int // passThrough, whole or stream
	status   int
	body     []byte
	tooLarge bool // the whole answer outgrew MaxWhole and was dropped
	stream   *Stream
	closed   bool
}

const (
	undecided = iota
	passThrough
	whole
	streamed
)

// NewWriter wraps w for answer a.
func NewWriter(w http.ResponseWriter, a *Answer) *Writer { return &Writer{ResponseWriter: w, a: a} }

// WriteHeader picks the mode from the Content-Type; a whole answer's
// header waits for its body, whose length changes.
func (g *Writer) WriteHeader(code int) {
	if g.mode != undecided {
		return
	}
	ct := g.Header().Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "text/event-stream"):
		g.mode, g.stream = streamed, g.a.NewStream()
	case strings.HasPrefix(ct, "application/json"):
		g.mode, g.status = whole, code
		g.Header().Del("Content-Length")
		return
	default:
		g.mode = passThrough
	}
	g.ResponseWriter.WriteHeader(code)
}

// Write restores p (or holds it, for a whole answer).
func (g *Writer) Write(p []byte) (int, error) {
	if g.mode == undecided {
		g.WriteHeader(http.StatusOK)
	}
	switch g.mode {
	case whole:
		if limit := cmp.Or(g.MaxWhole, DefaultMaxWhole); g.tooLarge || len(g.body)+len(p) > limit {
			g.body, g.tooLarge = nil, true
			return 0, ErrWholeTooLarge
		}
		g.body = append(g.body, p...)
		return len(p), nil
	case streamed:
		if g.a.Cut {
			return len(p), nil // cut: the rest of the answer is dropped
		}
		out := g.stream.Feed(p)
		if g.a.Cut && g.CutEvent != nil {
			out = append(out, g.CutEvent()...)
		}
		if len(out) > 0 {
			if _, err := g.ResponseWriter.Write(out); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	return g.ResponseWriter.Write(p)
}

// FlushError flushes what is ready (nothing of a whole answer).
func (g *Writer) FlushError() error {
	if g.mode == whole {
		return nil
	}
	return http.NewResponseController(g.ResponseWriter).Flush()
}

// HoldsWhole reports whether the Writer holds the answer whole, its header
// included, until Close: nothing of it has gone out yet.
func (g *Writer) HoldsWhole() bool { return g.mode == whole }

// Unwrap gives http.ResponseController the writer underneath.
func (g *Writer) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// Close writes what is still held: a whole answer, or a stream's last
// held tail.
func (g *Writer) Close() error {
	if g.closed {
		return nil
	}
	g.closed = true
	switch g.mode {
	case whole:
		var body []byte
		status := g.status
		switch {
		case g.tooLarge && g.TooLarge != nil:
			status, body = g.TooLarge()
		case g.tooLarge:
			status = http.StatusBadGateway
		default:
			body = g.a.Whole(g.body)
			if g.a.Cut && g.CutWhole != nil {
				status, body = g.CutWhole()
			}
		}
		g.ResponseWriter.WriteHeader(status)
		_, err := g.ResponseWriter.Write(body)
		return err
	case streamed:
		if g.a.Cut {
			return nil
		}
		if rest := g.stream.Close(); len(rest) > 0 {
			if _, err := g.ResponseWriter.Write(rest); err != nil {
				return err
			}
			return http.NewResponseController(g.ResponseWriter).Flush()
		}
	}
	return nil
}
