package guard

import (
	"net/http"
	"strings"
)

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

	mode   int // passThrough, whole or stream
	status int
	body   []byte
	stream *Stream
	closed bool
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
		body := g.a.Whole(g.body)
		status := g.status
		if g.a.Cut && g.CutWhole != nil {
			status, body = g.CutWhole()
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
