package convert

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The compatibility table in this package's README.md is generated here: every ✓ is a check
// that runs the converter on the recorded fixtures and passes, every ✗ is a
// declared gap whose check must fail (so a gap that gets fixed, or a claim
// that breaks, fails this test), and — marks what the target API has no
// field for. TestCompatTable compares the table with README.md; run
// go test ./relay/convert -run TestCompatTable -update to rewrite it.

type direction struct{ client, provider Dialect }

var directions = []direction{
	{Chat, Anthropic}, {Chat, Gemini}, {Anthropic, Chat}, {Anthropic, Gemini},
	{Responses, Chat}, {Responses, Anthropic}, {Responses, Gemini},
}

var dialectNames = map[Dialect]string{Chat: "OpenAI Chat", Responses: "OpenAI Responses", Anthropic: "Anthropic", Gemini: "Gemini"}

// compatRow is one feature. Request features check the provider body made
// from the client's full fixture (testdata/request/*_full.*); response
// features check what the client gets from every recorded provider stream
// (testdata/stream) or answer.
type compatRow struct {
	feature string
	// req checks the converted request body, by provider dialect.
	req map[Dialect]string
	// out checks the client's output, by client dialect.
	out map[Dialect]string
	// outFrom limits out to fixtures whose name contains this.
	outFrom string
	// na: directions where the target API has nothing to carry it to.
	na map[direction]string
	// gaps: directions where Strait does not convert it (yet).
	gaps map[direction]string
}

var compatRows = []compatRow{
	{feature: "System prompt", req: map[Dialect]string{Anthropic: `"system":\[`, Chat: `"role":"system"`, Gemini: `"systemInstruction"`}},
	{feature: "Multi-turn history", req: map[Dialect]string{Anthropic: `"role":"assistant"`, Chat: `"role":"assistant"`, Gemini: `"role":"model"`}},
	{feature: "Images, inline (data URL / base64)", req: map[Dialect]string{Anthropic: `"type":"base64"`, Chat: `"url":"data:image/`, Gemini: `"inlineData"`}},
	{feature: "Images, http URL", req: map[Dialect]string{Anthropic: `"type":"url"`, Chat: `"url":"https://`, Gemini: `"fileData"`}},
	{feature: "Tool definitions", req: map[Dialect]string{Anthropic: `"input_schema"`, Chat: `"parameters"`, Gemini: `"functionDeclarations"`}},
	{feature: "Tool choice", req: map[Dialect]string{Anthropic: `"tool_choice"`, Chat: `"tool_choice"`, Gemini: `"functionCallingConfig"`}},
	{feature: "Tool calls and results in history", req: map[Dialect]string{Anthropic: `"tool_result".*"tool_use"|"tool_use".*"tool_result"`,
		Chat: `"role":"tool"`, Gemini: `"functionResponse":\{"name":"\w+"`}},
	{feature: "Stop sequences", req: map[Dialect]string{Anthropic: `"stop_sequences"`, Chat: `"stop":\[`, Gemini: `"stopSequences"`},
		na: map[direction]string{{Responses, Chat}: "r", {Responses, Anthropic}: "r", {Responses, Gemini}: "r"}},
	{feature: "Max tokens", req: map[Dialect]string{Anthropic: `"max_tokens":\d`, Chat: `"max_tokens":\d`, Gemini: `"maxOutputTokens"`}},
	{feature: "Temperature / top_p", req: map[Dialect]string{Anthropic: `"temperature"`, Chat: `"temperature"`, Gemini: `"temperature"`}},
	{feature: "JSON mode / JSON schema", req: map[Dialect]string{Anthropic: `"output_format"`, Chat: `"response_format"`, Gemini: `"responseMimeType"`},
		na: map[direction]string{{Chat, Anthropic}: "j", {Responses, Anthropic}: "j", {Anthropic, Chat}: "ja", {Anthropic, Gemini}: "ja"}},
	{feature: "Thinking / reasoning request", req: map[Dialect]string{Anthropic: `"thinking":\{"budget_tokens"`, Chat: `"reasoning_effort"`, Gemini: `"thinkingConfig"`},
		gaps: map[direction]string{{Anthropic, Chat}: "b"}},
	{feature: "Thinking signatures sent back", req: map[Dialect]string{Anthropic: `"signature":"E`, Gemini: `"thoughtSignature":"CiQB0e"`},
		na: map[direction]string{{Anthropic, Chat}: "s", {Responses, Chat}: "s"}},
	{feature: "Prompt-cache markers (cache_control)", req: map[Dialect]string{Anthropic: `"cache_control"`},
		na:   map[direction]string{{Anthropic, Chat}: "c", {Anthropic, Gemini}: "c", {Chat, Gemini}: "c", {Responses, Chat}: "c", {Responses, Gemini}: "c"},
		gaps: map[direction]string{{Responses, Anthropic}: "rc"}},
	{feature: "Streamed text", out: map[Dialect]string{Chat: `"content":"\w`, Anthropic: `"text_delta"`, Responses: `response\.output_text\.delta`}},
	{feature: "Streamed tool-call arguments, fragment by fragment", out: map[Dialect]string{
		Chat: `"arguments":"(?:[^"\\]|\\.)+"\},"index":\d\}`, Anthropic: `"partial_json":"[^"]+"`, Responses: `function_call_arguments\.delta`}},
	{feature: "Parallel tool calls with distinct indexes", out: map[Dialect]string{
		Chat: `"index":1,"type":"function"`, Anthropic: `"type":"tool_use"\},"index":[1-9]`, Responses: `"status":"completed","type":"function_call"\},\{"arguments"`}},
	{feature: "Tool call ends as tool_calls / tool_use", out: map[Dialect]string{
		Chat: `"finish_reason":"tool_calls"`, Anthropic: `"stop_reason":"tool_use"`, Responses: `"type":"function_call"`}},
	{feature: "Thinking / reasoning stream", out: map[Dialect]string{
		Chat: `"reasoning_content"`, Anthropic: `"thinking_delta"`, Responses: `response\.reasoning_summary_text\.delta`}},
	{feature: "Thinking signatures to the client", out: map[Dialect]string{
		Chat: `"signature":"E|__ts__`, Anthropic: `"signature_delta"|__ts__`, Responses: `"encrypted_content"|__ts__`},
		na: map[direction]string{{Anthropic, Chat}: "s", {Responses, Chat}: "s"}},
	{feature: "Usage: cached input tokens", out: map[Dialect]string{
		Chat: `"cached_tokens":[1-9]`, Anthropic: `"cache_read_input_tokens":[1-9]`, Responses: `"cached_tokens":[1-9]`}},
	{feature: "Usage: cache-write tokens", out: map[Dialect]string{Chat: `"cache_write_tokens":[1-9]`, Anthropic: `"cache_creation_input_tokens":[1-9]`},
		na:   map[direction]string{{Anthropic, Chat}: "w", {Anthropic, Gemini}: "w", {Chat, Gemini}: "w", {Responses, Chat}: "w", {Responses, Gemini}: "w"},
		gaps: map[direction]string{{Responses, Anthropic}: "rw"}},
	{feature: "Usage: reasoning tokens", out: map[Dialect]string{Chat: `"reasoning_tokens":[1-9]`, Responses: `"reasoning_tokens":[1-9]`},
		na: map[direction]string{{Chat, Anthropic}: "a", {Responses, Anthropic}: "a", {Anthropic, Chat}: "n", {Anthropic, Gemini}: "n"}},
	{feature: "Error mid-stream as an in-band event", outFrom: "error_midstream", out: map[Dialect]string{
		Chat: `data: \{"error"`, Anthropic: `event: error`, Responses: `event: error`}},
	{feature: "Cut stream reported, never a clean end", outFrom: "truncated", out: map[Dialect]string{
		Chat: `-- end: \S`, Anthropic: `-- end: \S`, Responses: `-- end: \S`}},
}

// notes explain the ✗ and — cells.
var notes = map[string]string{
	"r":  "The Responses API has no stop sequences.",
	"j":  "Anthropic's Messages API has no JSON mode; the format request is dropped, not faked.",
	"ja": "Anthropic clients have no JSON mode to ask for.",
	"b":  "An Anthropic thinking budget has no Chat Completions equivalent (reasoning_effort is only sent when the client gave an effort).",
	"s":  "Chat Completions providers send no signatures, and need none back.",
	"c":  "The target has no cache markers (OpenAI and Gemini cache implicitly).",
	"rc": "The Responses API has no cache_control markers to pass on.",
	"w":  "The client's API has no cache-write count (and the provider reports none).",
	"rw": "The Responses API usage has no cache-write field.",
	"a":  "Anthropic does not report reasoning tokens separately.",
	"n":  "The Anthropic API has no reasoning-token field.",
}

// cell runs one check; ok is true when it passed.
func (r compatRow) check(t *testing.T, d direction) (ok bool, applicable bool) {
	if r.req != nil {
		re, has := r.req[d.provider]
		if !has {
			return false, false
		}
		return regexp.MustCompile(re).Match(convertedRequest(t, d)), true
	}
	re, has := r.out[d.client]
	if !has {
		return false, false
	}
	return regexp.MustCompile(re).Match(clientOutput(t, d, r.outFrom)), true
}

func convertedRequest(t *testing.T, d direction) []byte {
	files, _ := filepath.Glob("testdata/request/*_full." + string(d.client) + ".json")
	if len(files) != 1 {
		t.Fatalf("no full request fixture for %s", d.client)
	}
	src, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(d.client, d.provider, src, "")
	if err != nil {
		t.Fatal(err)
	}
	return p.Body
}

// clientOutput is everything the client receives from every stream fixture
// and non-streaming answer of the provider's dialect (outFrom selects).
func clientOutput(t *testing.T, d direction, outFrom string) []byte {
	var out bytes.Buffer
	streams, _ := filepath.Glob("testdata/stream/*")
	for _, in := range streams {
		name := filepath.Base(in)
		if strings.HasSuffix(name, ".golden") || providerOf(name) != d.provider || (outFrom != "" && !strings.Contains(name, outFrom)) {
			continue
		}
		src, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		p := &Plan{Client: d.client, Provider: d.provider, Stream: true, req: clientRequests[d.client]}
		err = p.Translate(bytes.NewReader(src), strings.HasSuffix(name, ".json"), func(b []byte) error { out.Write(b); return nil })
		if err != nil {
			fmt.Fprintf(&out, "-- end: %v\n", err)
		}
	}
	if outFrom != "" {
		return out.Bytes()
	}
	answers, _ := filepath.Glob("testdata/response/*.json")
	for _, in := range answers {
		if providerOf(filepath.Base(in)) != d.provider {
			continue
		}
		src, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		var rec recorder
		p := &Plan{Client: d.client, Provider: d.provider, req: &Request{}}
		if err := p.Respond(http.StatusOK, http.Header{}, bytes.NewReader(src), &rec); err != nil {
			t.Fatal(err)
		}
		out.Write(rec.body.Bytes())
	}
	return out.Bytes()
}

// compatTable renders the table, failing for any cell whose check
// disagrees with what the table claims.
func compatTable(t *testing.T) string {
	var b strings.Builder
	b.WriteString("| feature |")
	for _, d := range directions {
		fmt.Fprintf(&b, " %s → %s |", dialectNames[d.client], dialectNames[d.provider])
	}
	b.WriteString("\n| --- |" + strings.Repeat(" :-: |", len(directions)) + "\n")
	used := map[string]bool{}
	for _, r := range compatRows {
		b.WriteString("| " + r.feature + " |")
		for _, d := range directions {
			ok, applicable := r.check(t, d)
			cell := "✓"
			if n, isNA := r.na[d]; isNA {
				cell, used[n] = "—"+sup(n), true
			} else if n, isGap := r.gaps[d]; isGap {
				cell, used[n] = "✗"+sup(n), true
				if ok {
					t.Errorf("%s, %s→%s: declared a gap but the check passes; update the table", r.feature, d.client, d.provider)
				}
			} else if !applicable || !ok {
				t.Errorf("%s, %s→%s: the check fails (applicable %v)", r.feature, d.client, d.provider, applicable)
				cell = "✗"
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, k := range []string{"r", "j", "ja", "b", "s", "c", "rc", "w", "rw", "a", "n"} {
		if used[k] {
			fmt.Fprintf(&b, "%s %s  \n", sup(k), notes[k])
		}
	}
	return b.String()
}

func sup(key string) string { return "<sup>" + key + "</sup>" }

const compatBegin, compatEnd = "<!-- compat:begin (generated by relay/convert TestCompatTable) -->\n", "<!-- compat:end -->"

// TestCompatTable checks (or, under -update, writes) the README table.
func TestCompatTable(t *testing.T) {
	table := compatTable(t)
	const readme = "README.md"
	src, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(src, []byte(compatBegin)), bytes.Index(src, []byte(compatEnd))
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q … %q section", compatBegin, compatEnd)
	}
	got := string(src[i+len(compatBegin) : j])
	if got == table {
		return
	}
	if !*update {
		t.Fatalf("README.md compatibility table is stale; run go test ./relay/convert -run TestCompatTable -update\nwant:\n%s", table)
	}
	out := append(append(append([]byte{}, src[:i+len(compatBegin)]...), table...), src[j:]...)
	if err := os.WriteFile(readme, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
