package usage

import (
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// textSeeds are events of every family, and the shapes fastMessage must leave
// to the full decode.
var textSeeds = []string{
	`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{"content":"a\nb \u00e9\ud83d\ude00"}}],"usage":null}`,
	`{"id":"c","choices":[{"index":0,"delta":{"reasoning_content":"think","content":null}}]}`,
	`{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`,
	`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}`,
	`{"type":"message_start","message":{"id":"m","usage":{"input_tokens":5,"output_tokens":1}}}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}`,
	`{"type":"response.output_text.delta","item_id":"i","output_index":0,"delta":"word"}`,
	`{"type":"response.completed","response":{"usage":{"input_tokens":4,"output_tokens":6,"total_tokens":10}}}`,
	`{"candidates":[{"content":{"parts":[{"text":"Gem"},{"text":"ini"}],"role":"model"}}]}`,
	`{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":1}}`,
	`{"Choices":[{"delta":{"content":"case"}}]}`,
	`{"choices":[{"delta":{"content":"one"}}],"choices":[{"delta":{"content":"two"}}]}`,
	`{"choices":[{"delta":{"content":5}}]}`,
	`{"choices":[{"delta":{"content":"\xff\xfe"}}]}`,
	`{"type":7,"choices":[{"delta":{"content":"t"}}]}`,
	`{"delta":{"text":1}}`,
	`{"ch\u006fices":[{"delta":{"content":"esc"}}]}`,
	`{"choices":[1,{"delta":{"content":"x"}}]}`,
	`{"choices":[{"delta":{"content":"x"}}]`,
	`{"usage":null,"Usage":null,"delta":"d"}`,
	`{"delta":[1,2],"candidates":null}`,
	// Whole bodies and final events with a top-level usage object, which
	// fastMessage hands to the meter, and the shapes it must not.
	unaryOpenAI,
	unaryAnthropic,
	`{"type":"message_start","usage":{"input_tokens":5}}`,
	`{"type":"message_\u0073tart","usage":{"input_tokens":5,"output_tokens":2}}`,
	`{"type":null,"usage":{"input_tokens":5,"output_tokens":2}}`,
	`{"id":"r","object":"response","usage":{"input_tokens":4,"output_tokens":6,"input_tokens_details":{"cached_tokens":1}}}`,
	`{"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":3,"completion_tokens":"2"}}`,
	`{"usage":{"prompt_tokens":3},"usage":{"completion_tokens":2}}`,
	`{"usage":{"prompt_tokens":3},"Usage":null}`,
	`{"usage":null,"usage":{"prompt_tokens":3}}`,
	`{"Usage":{"prompt_tokens":3}}`,
	`{"usage":5,"choices":[]}`,
	`{"usage":[1],"choices":[]}`,
	`{"usage":{"PROMPT_TOKENS":3,"prompt_tokens":4}}`,
	`{"usage":{"prompt_tokens":3},"usageMetadata":{"promptTokenCount":2}}`,
	`{"usage":{"prompt_tokens":3},"response":null,"message":{"usage":{"input_tokens":1}}}`,
	`{"candidates":[{"content":{"parts":[{"text":"x"}]}}],"usage":{"prompt_tokens":3}}`,
}

// Unary answers as providers send them (the lab's fake answers so).
const (
	unaryOpenAI = `{"id":"chatcmpl-1","object":"chat.completion","created":1733400000,"model":"gpt-4o-mini",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello there."},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0}}}`
	unaryAnthropic = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",` +
		`"content":[{"type":"text","text":"Hello there."}],"stop_reason":"end_turn",` +
		`"usage":{"input_tokens":9,"cache_read_input_tokens":2,"output_tokens":3}}`
)

// TestFastTextCountsWhatTheDecoderCounts runs each seed through a meter
// (fastMessage first) and through the full decode, and wants the same state.
func TestFastTextCountsWhatTheDecoderCounts(t *testing.T) {
	fast := 0
	for _, s := range textSeeds {
		if f, ok := fastMessage([]byte(s)); ok && f.usage == nil {
			fast++
		}
		checkFastText(t, []byte(s))
	}
	// The common events (text deltas of every family) must take the fast
	// path, or it saves nothing.
	if fast < 10 {
		t.Errorf("fastMessage answered %d of %d seeds without usage, want at least 10", fast, len(textSeeds))
	}
}

func FuzzFastText(f *testing.F) {
	for _, s := range textSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkFastText)
}

// checkFastText fails when metering data with fastMessage first leaves a meter
// in another state than decoding it whole, for each family.
func checkFastText(t *testing.T, data []byte) {
	if len(data) == 0 || data[0] != '{' {
		return
	}
	for _, family := range llmapi.Families {
		viaFast, viaDecode := NewMeter(family, true, false), NewMeter(family, true, false)
		viaFast.observe(data)
		viaDecode.decode(data)
		if viaFast.text != viaDecode.text || viaFast.u != viaDecode.u || viaFast.final != viaDecode.final ||
			viaFast.sawInput != viaDecode.sawInput {
			t.Errorf("%s %q: fast path text %d usage %+v final %v input %v; decode text %d usage %+v final %v input %v",
				family, data, viaFast.text, viaFast.u, viaFast.final, viaFast.sawInput,
				viaDecode.text, viaDecode.u, viaDecode.final, viaDecode.sawInput)
		}
	}
}

// TestUnaryUsageFastPath: a unary answer's usage is read without the full
// decode (its usage object alone is decoded), for OpenAI and Anthropic.
func TestUnaryUsageFastPath(t *testing.T) {
	for _, body := range []string{unaryOpenAI, unaryAnthropic} {
		f, ok := fastMessage([]byte(body))
		if !ok || f.usage == nil || f.usage[0] != '{' {
			t.Errorf("%.40s: fastMessage ok %v usage %q, want the usage object", body, ok, f.usage)
		}
	}
	m := NewMeter(llmapi.OpenAI, false, false)
	m.Feed([]byte(unaryOpenAI))
	if u := m.Result(100); u.Input != 9 || u.Output != 3 || u.Estimated {
		t.Errorf("OpenAI unary usage %+v, want 9 in, 3 out, reported", u)
	}
}

// TestFastTextAllocatesNothing pins the point of the fast path: a text
// event is metered without allocating.
func TestFastTextAllocatesNothing(t *testing.T) {
	ev := []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" hello"},"finish_reason":null}],"usage":null}` + "\n\n")
	m := NewMeter(llmapi.OpenAI, true, false)
	n := testing.AllocsPerRun(100, func() { m.Feed(ev) })
	if raceEnabled {
		t.Logf("%v allocations per event; not checked under the race detector, which empties sync.Pools", n)
	} else if n != 0 {
		t.Errorf("metering a text event allocates %v times, want 0", n)
	}
	if m.text != 101*len(" hello") {
		t.Errorf("counted %d bytes of text, want %d", m.text, 101*len(" hello"))
	}
}

// BenchmarkMeterTextEvent is the edge's metering cost for one streamed text
// event of each family, as the tunnel delivers it (under include_usage, an
// OpenAI chunk ends with "usage":null).
func BenchmarkMeterTextEvent(b *testing.B) {
	events := []struct {
		family llmapi.Family
		ev     string
	}{
		{llmapi.OpenAI, `{"id":"chatcmpl-abc123","object":"chat.completion.chunk","created":1733400000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" hello world"},"finish_reason":null}],"usage":null}`},
		{llmapi.Anthropic, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" hello world"}}`},
		{llmapi.OpenAI, `{"type":"response.output_text.delta","sequence_number":7,"item_id":"msg_1","output_index":0,"content_index":0,"delta":" hello world"}`},
	}
	for _, e := range events {
		ev := []byte("data: " + e.ev + "\n\n")
		b.Run(string(e.family), func(b *testing.B) {
			m := NewMeter(e.family, true, false)
			b.ReportAllocs()
			for b.Loop() {
				m.Feed(ev)
			}
		})
	}
}

// BenchmarkMeterUnaryBody is the edge's metering cost for one unary JSON
// answer (its usage read at the end).
func BenchmarkMeterUnaryBody(b *testing.B) {
	for _, e := range []struct {
		family llmapi.Family
		body   string
	}{{llmapi.OpenAI, unaryOpenAI}, {llmapi.Anthropic, unaryAnthropic}} {
		body := []byte(e.body)
		b.Run(string(e.family), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := NewMeter(e.family, false, false)
				m.Feed(body)
				m.Result(len(body))
			}
		})
	}
}

// TestMeterKeepsNoBufferBetweenEvents: a stream metered event by event
// holds no buffer while it waits for the next one, and an event split
// across writes is still metered whole.
func TestMeterKeepsNoBufferBetweenEvents(t *testing.T) {
	ev := `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" hello"},"finish_reason":null}]}` + "\n\n"
	m := NewMeter(llmapi.OpenAI, true, false)
	for i, piece := range []string{ev, ev, ev[:40], ev[40:], ev} {
		p := []byte(piece)
		if out := m.Feed(p); string(out) != piece {
			t.Fatalf("piece %d passed on as %q", i, out)
		}
		clear(p) // the caller's buffer is reused: the meter must not have kept it
		if split := i == 2; (m.held != nil) != split {
			t.Fatalf("after piece %d the meter holds %d bytes (buffer %v); want one only mid-event", i, len(m.held), m.held != nil)
		}
	}
	if m.text != 4*len(" hello") {
		t.Fatalf("counted %d bytes of text; want %d", m.text, 4*len(" hello"))
	}
}
