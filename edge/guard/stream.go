package guard

import (
	"bytes"
	"slices"
	"strings"

	"github.com/strait/strait/proto/llmapi"
)

// Stream restores a streamed (SSE) answer event by event. Each string of
// an event's JSON continues the string at the same place (its channel:
// path plus choice, tool-call or content-block index) in earlier events;
// where a piece ends with what may be the start of a placeholder, that
// tail is held back, never longer than a placeholder, and goes out with
// the next piece of the same channel. Events are never delayed: one whose
// text is held back goes out at once with the rest of its text.
type Stream struct {
	a       *Answer
	buf     []byte           // an incomplete event
	resume  int              // where llmapi.EventEnd goes on in buf
	pending map[string]*held // per channel
	order   []string         // channels with a tail held, in arrival order
	seen    map[string]bool  // channels in the current event
	lexers  map[string]*jsonLexer
}

// held is a channel's held-back tail and the last event that carried the
// channel, to send the tail in when no further piece comes.
type held struct {
	tail       string
	event      []byte // the event, data lines replaced by one
	data       []byte // its JSON
	start, end int    // the string's span in data
	place      place  // what output_words may do to it (wordsPlace)
}

// NewStream starts restoring one streamed answer.
func (a *Answer) NewStream() *Stream {
	return &Stream{a: a, pending: map[string]*held{}, seen: map[string]bool{}, lexers: map[string]*jsonLexer{}}
}

// Feed takes the next bytes from upstream and returns what may go to the
// client now.
func (s *Stream) Feed(p []byte) []byte {
	s.buf = append(s.buf, p...)
	var out []byte
	for {
		n, resume := llmapi.EventEnd(s.buf, s.resume, false)
		if n < 0 {
			s.resume = resume
			break
		}
		out = s.event(out, s.buf[:n])
		s.buf, s.resume = s.buf[n:], 0
		if s.a.Cut { // output_words: cut; nothing after the word goes out
			s.buf = nil
			return out
		}
	}
	if len(s.buf) == 0 {
		s.buf = nil // let a large event's buffer go
	}
	return out
}

// Close returns the rest: an unterminated last event and held tails.
func (s *Stream) Close() []byte {
	if s.a.Cut {
		return nil
	}
	out := s.flushHeld(nil)
	if len(s.buf) > 0 {
		out = s.event(out, s.buf)
		out = s.flushHeld(out)
		s.buf = nil
	}
	return out
}

// withData rebuilds ev with data in place of its data lines.
func withData(ev, data []byte) []byte {
	var out []byte
	rest, done := ev, false
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := rest
		if i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if bytes.HasPrefix(line, []byte("data:")) {
			if !done {
				out = append(append(append(out, "data: "...), data...), '\n')
				done = true
			}
			continue
		}
		out = append(out, line...)
	}
	return out
}

// event processes one complete event.
func (s *Stream) event(out, ev []byte) []byte {
	data := llmapi.EventData(ev)
	if data == nil || isPing(ev, data) {
		return append(out, ev...) // comments and pings do not end a piece of text
	}
	if len(data) == 0 || data[0] != '{' && data[0] != '[' || !s.a.mayHold(data) && len(s.pending) == 0 && !s.followsJSON(data) {
		out = s.flushHeld(out)
		return append(out, ev...)
	}
	clear(s.seen)
	var edits []edit
	type carry struct {
		ch    string
		span  span
		tail  string
		place place
	}
	var carried []carry
	ends, err := walk(data, func(w *walker, sp span) error {
		v, err := decodeString(data[sp.start:sp.end])
		if err != nil {
			return err
		}
		ch := w.channel()
		s.seen[ch] = true
		prefix := ""
		if h := s.pending[ch]; h != nil {
			prefix = h.tail
		}
		lex := lexer(s.lexers, ch, w, data)
		// A piece of a JSON text may end in the start of an escaped
		// bracket (a backslash, \u27), held back as a bare one is.
		if prefix == "" && !s.a.mayHold(data[sp.start:sp.end]) && (lex == nil || pendingFrom(v, true) == len(v)) {
			lex.write(v)
			return nil
		}
		t := s.a.restore(w, data, prefix+v, lex)
		// A choice's finish reason ends its own text, not the other
		// choices' (Chat with n > 1 sends them in one stream).
		final := w.finishing > 0
		cut := len(t)
		if !final {
			cut = pendingFrom(t, lex != nil)
		}
		// Only text goes on in the next event: a word is held back there,
		// never in an id, a type or a finish reason.
		text := len(w.path) > 0 && textKey(string(w.path[len(w.path)-1]))
		pl := wordsPlace(w, data)
		emit, tail := s.a.words(t, cut, final || !text, pl, lex)
		lex.write(emit)
		if emit != v {
			edits = append(edits, edit{sp, emit})
		}
		carried = append(carried, carry{ch, sp, tail, pl})
		return nil
	}, s.a.keys(data, &edits))
	if err != nil {
		out = s.flushHeld(out)
		return append(out, ev...)
	}
	// An event that ends pieces (a block's end, the message's) first lets
	// out the tails of the channels it does not continue, in the event that
	// last carried each; one that ends choices (a finish reason) only
	// those of the channels within them. Other events leave them held, so
	// interleaved channels (parallel tool calls, other choices) keep their
	// tails.
	all := endsPieces(data)
	if all || len(ends) > 0 {
		for _, ch := range s.order {
			if !s.seen[ch] && (all || within(ch, ends)) {
				out = s.flushOne(out, ch)
			}
		}
	}
	newData := apply(data, edits)
	evOut := ev
	if len(edits) > 0 {
		evOut = withData(ev, newData)
	}
	for _, c := range carried {
		delete(s.pending, c.ch)
		if c.tail == "" {
			continue
		}
		s.pending[c.ch] = &held{tail: c.tail, event: evOut, data: data, start: c.span.start, end: c.span.end, place: c.place}
	}
	order := s.order[:0]
	for _, ch := range s.order {
		if s.pending[ch] != nil && !slices.Contains(order, ch) {
			order = append(order, ch)
		}
	}
	for _, c := range carried {
		if c.tail != "" && !slices.Contains(order, c.ch) {
			order = append(order, c.ch)
		}
	}
	s.order = order
	return append(out, evOut...)
}

// followsJSON reports whether the event data may carry a piece of a JSON
// text (inJSONText) that a value may be restored into later: the lexer
// of its channel must read every piece, those without placeholders too.
func (s *Stream) followsJSON(data []byte) bool {
	return s.a.vault.Len() > 0 && (bytes.Contains(data, []byte(`"arguments"`)) || bytes.Contains(data, []byte(`"partial_json"`)) ||
		bytes.Contains(data, []byte(`"response.function_call_arguments.delta"`)))
}

// endMarkers are what the events that end every piece of text carry: an
// Anthropic block's or message's end, a Responses item's or response's
// end, an error. An OpenAI choice's or a Gemini candidate's finish reason
// ends that choice's pieces only (walker.ends).
var endMarkers = [][]byte{[]byte(`"content_block_stop"`), []byte(`"message_delta"`), []byte(`"message_stop"`),
	[]byte(`.done"`), []byte(`"response.completed"`), []byte(`"error"`)}

// within reports whether channel ch lies in one of the objects whose
// channel prefixes are ends.
func within(ch string, ends []string) bool {
	for _, e := range ends {
		if strings.HasPrefix(ch, e) {
			return true
		}
	}
	return false
}

func endsPieces(data []byte) bool {
	for _, m := range endMarkers {
		if bytes.Contains(data, m) {
			return true
		}
	}
	return false
}

// isPing: Anthropic's keep-alive event, which says nothing about text.
func isPing(ev, data []byte) bool {
	return bytes.HasPrefix(ev, []byte("event: ping")) || len(data) < 40 && bytes.Contains(data, []byte(`"ping"`))
}

// flushHeld sends every held tail.
func (s *Stream) flushHeld(out []byte) []byte {
	for _, ch := range s.order {
		out = s.flushOne(out, ch)
	}
	s.order = s.order[:0]
	return out
}

// flushOne sends a channel's tail as a copy of the last event that
// carried the channel, with the tail as the channel's text.
func (s *Stream) flushOne(out []byte, ch string) []byte {
	h := s.pending[ch]
	if h == nil {
		return out
	}
	delete(s.pending, ch)
	tail, _ := s.a.words(h.tail, len(h.tail), true, h.place, s.lexers[ch])
	data := apply(h.data, []edit{{span{h.start, h.end}, tail}})
	// Other strings of that event went out already: blank them.
	data = blankOthers(data, h.start)
	return append(out, withData(h.event, data)...)
}

// blankOthers empties, in a copied event, the text strings other than the
// one at start, so that nothing is sent twice. Only strings of the text
// kinds are emptied; ids, types and names stay.
func blankOthers(data []byte, keep int) []byte {
	var edits []edit
	_ = walkPlain(data, func(w *walker, sp span) error {
		if sp.start != keep && len(w.path) > 0 && textKey(string(w.path[len(w.path)-1])) && sp.end-sp.start > 2 {
			edits = append(edits, edit{sp, ""})
		}
		return nil
	}, nil)
	return apply(data, edits)
}

func textKey(k string) bool {
	switch k {
	case "text", "content", "partial_json", "arguments", "refusal", "delta", "thinking", "reasoning_content":
		return true
	}
	return false
}
