package usage

import (
	"bytes"
	"encoding/json"
	"io"
	"unicode/utf8"

	"github.com/strait/strait/proto/llmapi"
)

// maxHeld bounds what a Meter buffers of one SSE event. Past it a metering
// Meter keeps only the event's last tailSize bytes (where a large final
// event, Responses' response.completed, has its usage), and a hiding one
// stops filtering and reading usage (and estimates) rather than grow.
const maxHeld = 1 << 20

// maxJSON bounds a JSON body buffered whole. A larger one (a big batch of
// embeddings) keeps only its last tailSize bytes, where every family puts
// its usage object, so hundreds of large responses in flight do not each
// hold megabytes.
const (
	maxJSON  = 1 << 20
	tailSize = 64 << 10
)

// Meter reads usage from one response body as it passes. It is not safe for
// concurrent use; one goroutine feeds it in order.
type Meter struct {
	family llmapi.Family
	sse    bool
	// hide drops OpenAI's extra usage chunk and the "usage":null fields
	// that include_usage adds, for a client that did not ask for them.
	hide bool

	held     []byte // an incomplete SSE event, or the JSON body so far
	overflow bool
	tail     []byte // the end of a JSON body past maxJSON
	// scanned is how much of held is known to hold no event end, so each
	// byte is searched once however finely the event arrives.
	scanned int
	// bigEvent: held is only the tail of an event larger than maxHeld.
	bigEvent bool
	// scans counts the bytes searched for event ends (the test of linear
	// work reads it).
	scans int

	u              Usage
	final          bool // the provider's final usage was seen
	sawInput       bool // input was reported (Anthropic message_start, Gemini)
	text           int  // bytes of generated text delivered
	jsonDone       bool
	jsonParseError bool
}

// NewMeter meters a response of family with the given Content-Type. hide
// is for an OpenAI stream whose include_usage the edge added.
func NewMeter(family llmapi.Family, sse, hide bool) *Meter {
	return &Meter{family: family, sse: sse, hide: hide && sse}
}

// Feed takes the next piece of the body and returns what the client gets:
// p itself, except when hiding, where complete events are passed on (an
// incomplete one waits for its end) without the usage chunk.
func (m *Meter) Feed(p []byte) []byte {
	if m.overflow {
		return p
	}
	if !m.sse {
		m.holdJSON(p)
		return p
	}
	if !m.hide {
		m.hold(p)
		return p
	}
	var aliased bool
	m.held, aliased = m.carry(p)
	var out []byte
	m.events(func(ev []byte) { out = append(out, m.filter(ev)...) })
	if m.overflow { // an event too large to inspect: pass it on unfiltered
		out, m.held = append(out, m.held...), nil
	}
	m.keepRest(aliased)
	return out
}

// carry returns what events should parse: p where it is when nothing was
// carried over (aliased), else p after the unfinished event held.
func (m *Meter) carry(p []byte) (held []byte, aliased bool) {
	if len(m.held) == 0 {
		return p, true
	}
	return append(m.held, p...), false
}

// keepRest keeps, after events, only an unfinished event's bytes, in a
// buffer of the Meter's own: a stream that waits for its next event (the
// edge holds thousands) keeps no buffer, and whole events, the usual
// case, are metered without a copy.
func (m *Meter) keepRest(aliased bool) {
	switch {
	case len(m.held) == 0:
		m.held = nil
	case aliased:
		m.held = bytes.Clone(m.held)
	}
}

// holdJSON buffers a JSON body whole up to maxJSON, then only its tail.
func (m *Meter) holdJSON(p []byte) {
	if m.tail == nil && len(m.held)+len(p) <= maxJSON {
		m.held = append(m.held, p...)
		return
	}
	if m.tail == nil {
		m.tail, m.held = m.held, nil
	}
	m.tail = append(m.tail, p...)
	if len(m.tail) > 2*tailSize { // trim in steps, not on every write
		m.tail = append(m.tail[:0], m.tail[len(m.tail)-tailSize:]...)
	}
}

// hold buffers p for parsing. Of an event larger than maxHeld only the
// last tailSize bytes stay: enough to find its end and its usage.
func (m *Meter) hold(p []byte) {
	var aliased bool
	m.held, aliased = m.carry(p)
	m.events(func([]byte) {})
	m.keepRest(aliased)
	if len(m.held) > maxHeld {
		cut := len(m.held) - tailSize
		m.held = append(make([]byte, 0, 2*tailSize), m.held[cut:]...)
		m.scanned = max(0, m.scanned-cut)
		m.bigEvent = true
	}
}

// events calls emit with each complete SSE event in held, after metering
// it, and keeps the incomplete rest.
func (m *Meter) events(emit func([]byte)) {
	for {
		end := m.eventEnd()
		if end < 0 {
			break
		}
		ev := m.held[:end]
		if m.bigEvent {
			m.observeTail(ev)
			m.bigEvent = false
		} else {
			m.observe(llmapi.EventData(ev))
		}
		emit(ev)
		m.held, m.scanned = m.held[end:], 0
	}
	if len(m.held) > maxHeld && m.hide {
		m.overflow = true
	}
}

// eventEnd is the index just past the blank line ending the first event in
// held, or -1. It resumes where the last search stopped (llmapi.EventEnd
// says where), so each byte is searched about once.
func (m *Meter) eventEnd() int {
	end, resume := llmapi.EventEnd(m.held, m.scanned, false)
	if end >= 0 {
		m.scans += end - m.scanned
		return end
	}
	m.scans += len(m.held) - m.scanned
	m.scanned = resume
	return -1
}

var (
	emptyChoices = []byte(`"choices":[]`)
	usageNull    = []byte(`,"usage":null`)
)

// filter returns ev as the client would have had it without include_usage.
func (m *Meter) filter(ev []byte) []byte {
	data := llmapi.EventData(ev)
	if bytes.Contains(data, emptyChoices) && !bytes.Contains(data, []byte(`"usage":null`)) &&
		bytes.Contains(data, []byte(`"usage"`)) {
		return nil
	}
	// "usage":null closes every other chunk: drop exactly that member.
	if i := bytes.LastIndex(ev, usageNull); i >= 0 && bytes.HasPrefix(bytes.TrimLeft(ev[i+len(usageNull):], " "), []byte("}")) {
		out := make([]byte, 0, len(ev)-len(usageNull))
		return append(append(out, ev[:i]...), ev[i+len(usageNull):]...)
	}
	return ev
}

// observe meters one JSON message (an SSE event's data or a body).
func (m *Meter) observe(data []byte) {
	if len(data) == 0 || data[0] != '{' {
		return // [DONE], keep-alives
	}
	f, ok := fastMessage(data) // most events: text, no usage
	if !ok {
		m.decode(data)
		return
	}
	if f.usage == nil {
		m.text += f.text
		return
	}
	// A body or final event with usage: decode only the usage object
	// (and the type, for Anthropic), not the whole message.
	var msg message
	var w llmapi.WireUsage
	if msg.Usage = &w; !readUsage(f.usage, &w) {
		var decoded *llmapi.WireUsage // apart from msg, which stays on the stack
		if json.Unmarshal(f.usage, &decoded) != nil {
			m.decode(data) // which fails as well, and counts nothing
			return
		}
		msg.Usage = decoded
	}
	if m.family == llmapi.Anthropic && f.typ != nil {
		if msg.Type, ok = readType(f.typ); !ok {
			m.decode(data)
			return
		}
	}
	m.text += f.text
	m.apply(&msg)
}

// readType reads a JSON string, with its quotes, as the decoder would.
func readType(raw []byte) (string, bool) {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), true
	}
	var typ string
	err := json.Unmarshal(raw, &typ)
	return typ, err == nil
}

// decode meters one JSON message by decoding it whole.
func (m *Meter) decode(data []byte) {
	var msg message
	if json.Unmarshal(data, &msg) != nil {
		return
	}
	m.text += msg.deliveredText()
	m.apply(&msg)
}

// apply takes the usage msg reports, by the family's rules.
func (m *Meter) apply(msg *message) {
	switch m.family {
	case llmapi.Anthropic:
		m.anthropic(msg)
	case llmapi.Gemini:
		if msg.UsageMetadata != nil {
			m.u, m.sawInput = msg.UsageMetadata.Normal(), true
			m.final = m.final || finished(msg) // earlier chunks carry partial counts
		}
	default:
		w := msg.Usage
		if msg.Response != nil && msg.Response.Usage != nil {
			w = msg.Response.Usage
		}
		if w != nil {
			m.u, m.final, m.sawInput = w.OpenAI(), true, true
		}
	}
}

func finished(msg *message) bool {
	for _, c := range msg.Candidates {
		if c.FinishReason != "" {
			return true
		}
	}
	return false
}

// anthropic reads message_start (input and cache tokens), message_delta
// (cumulative output, sometimes updated input) and whole Message bodies.
func (m *Meter) anthropic(msg *message) {
	w := msg.Usage
	if msg.Message != nil && msg.Message.Usage != nil {
		w = msg.Message.Usage
	}
	if w == nil {
		return
	}
	if w.InputTokens != 0 || w.CacheReadInputTokens != 0 || w.CacheCreationInputTokens != 0 || !m.sawInput {
		m.u.Input, m.u.CacheRead, m.u.CacheWrite = w.InputTokens, w.CacheReadInputTokens, w.CacheCreationInputTokens
		m.sawInput = true
	}
	m.u.Output = w.OutputTokens
	if msg.Type != "message_start" {
		m.final = true // message_delta, or a non-streaming Message
	}
}

// Flush returns bytes still held back when the body ends (an unterminated
// last event), unfiltered.
func (m *Meter) Flush() []byte {
	if !m.sse || !m.hide || m.overflow {
		return nil
	}
	out := m.held
	m.held = nil
	return out
}

// Result is the request's usage. requestBytes sizes the input estimate
// when the provider reported none.
func (m *Meter) Result(requestBytes int) Usage {
	if !m.sse && !m.jsonDone && !m.overflow {
		m.jsonDone = true
		if m.tail != nil {
			m.observeTail(m.tail)
		} else {
			m.observeJSON(m.held)
		}
		m.held, m.tail = nil, nil
	}
	u := m.u
	if !m.final {
		u.Estimated = true
		if out := EstimateTokens(m.text); out > u.Output {
			u.Output = out
		}
	}
	if !m.sawInput {
		u.Estimated = true
		u.Input = EstimateTokens(requestBytes)
	}
	return u
}

// observeJSON meters a whole JSON body: one object, or Gemini's stream as a
// JSON array, read element by element so a cut array still counts.
func (m *Meter) observeJSON(b []byte) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '[' {
		m.observe(b)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if err != io.EOF {
				m.jsonParseError = true
			}
			return
		}
		m.observe(raw)
	}
}

// observeTail reads the last usage object in the end of a large body.
func (m *Meter) observeTail(tail []byte) {
	key := `"usage"`
	if m.family == llmapi.Gemini {
		key = `"usageMetadata"`
	}
	i := bytes.LastIndex(tail, []byte(key))
	if i < 0 {
		return
	}
	rest := bytes.TrimLeft(tail[i+len(key):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return
	}
	var v json.RawMessage
	if json.NewDecoder(bytes.NewReader(rest[1:])).Decode(&v) != nil {
		return
	}
	// Wrap the object as the body it came from, so observe applies the
	// family's rules; a Gemini tail counts as its final chunk.
	body := append(append([]byte(`{`+key+`:`), v...), '}')
	if m.family == llmapi.Gemini {
		body = append(append([]byte(`{"candidates":[{"finishReason":"STOP"}],`+key+`:`), v...), '}')
	}
	m.observe(body)
}
