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

	"github.com/strait/strait/proto/llmapi"
)

// The compatibility table in this package's README.md is generated here: every ✓ is a check
// that runs the converter on the recorded fixtures and passes, every ✗ is a
// declared gap whose check must fail (so a gap that gets fixed, or a claim
// that breaks, fails this test), and — marks what the target API has no
// field for. TestCompatTable compares the table with README.md; run
// go test ./relay/convert -run TestCompatTable -update to rewrite it.

type direction struct{ client, provider llmapi.Dialect }

var directions = []direction{
	{llmapi.ChatCompletions, llmapi.Messages}, {llmapi.ChatCompletions, llmapi.GenerateContent}, {llmapi.Messages, llmapi.ChatCompletions}, {llmapi.Messages, llmapi.GenerateContent},
	{llmapi.Responses, llmapi.ChatCompletions}, {llmapi.Responses, llmapi.Messages}, {llmapi.Responses, llmapi.GenerateContent},
	{llmapi.GenerateContent, llmapi.ChatCompletions}, {llmapi.GenerateContent, llmapi.Messages},
	{llmapi.ChatCompletions, llmapi.Responses}, {llmapi.Messages, llmapi.Responses}, {llmapi.GenerateContent, llmapi.Responses},
}

var dialectNames = map[llmapi.Dialect]string{llmapi.ChatCompletions: "OpenAI Chat", llmapi.Responses: "OpenAI Responses", llmapi.Messages: "Anthropic", llmapi.GenerateContent: "Gemini"}

// compatRow is one feature. Request features check the provider body made
// from the client's full fixture (testdata/request/*_full.*); response
// features check what the client gets from every recorded provider stream
// (testdata/stream) or answer.
type compatRow struct {
	feature string
	// req checks the converted request body, by provider dialect.
	req map[llmapi.Dialect]string
	// out checks the client's output, by client dialect.
	out map[llmapi.Dialect]string
	// outFrom limits out to fixtures whose name contains this.
	outFrom string
	// na: directions where the target API has nothing to carry it to.
	na map[direction]string
	// gaps: directions where Strait does not convert it (yet).
	gaps map[direction]string
}

var compatRows = []compatRow{
	{feature: "System prompt", req: map[llmapi.Dialect]string{llmapi.Messages: `"system":\[`, llmapi.ChatCompletions: `"role":"system"`, llmapi.GenerateContent: `"systemInstruction"`, llmapi.Responses: `"instructions"`}},
	{feature: "Multi-turn history", req: map[llmapi.Dialect]string{llmapi.Messages: `"role":"assistant"`, llmapi.ChatCompletions: `"role":"assistant"`, llmapi.GenerateContent: `"role":"model"`,
		llmapi.Responses: `"role":"assistant"|"type":"function_call"`}},
	{feature: "Images, inline (data URL / base64)", req: map[llmapi.Dialect]string{llmapi.Messages: `"type":"base64"`, llmapi.ChatCompletions: `"url":"data:image/`, llmapi.GenerateContent: `"inlineData"`, llmapi.Responses: `"image_url":"data:image/`}},
	{feature: "Images, http URL", req: map[llmapi.Dialect]string{llmapi.Messages: `"type":"url"`, llmapi.ChatCompletions: `"url":"https://`, llmapi.GenerateContent: `"fileData"`, llmapi.Responses: `"image_url":"https://`}},
	{feature: "Documents (PDF), inline", req: map[llmapi.Dialect]string{llmapi.Messages: `"media_type":"application/pdf","type":"base64"\},[^{]*"type":"document"`,
		llmapi.ChatCompletions: `"file":\{"file_data":"data:application/pdf;base64,`, llmapi.GenerateContent: `"inlineData":\{"data":"[^"]+","mimeType":"application/pdf"`,
		llmapi.Responses: `"file_data":"data:application/pdf;base64,[^"]+","filename":"[^"]+","type":"input_file"`}},
	{feature: "Tool definitions", req: map[llmapi.Dialect]string{llmapi.Messages: `"input_schema"`, llmapi.ChatCompletions: `"parameters"`, llmapi.GenerateContent: `"functionDeclarations"`,
		llmapi.Responses: `"parameters":\{[^\n]*"type":"function"`}},
	{feature: "Tool choice", req: map[llmapi.Dialect]string{llmapi.Messages: `"tool_choice"`, llmapi.ChatCompletions: `"tool_choice"`, llmapi.GenerateContent: `"functionCallingConfig"`, llmapi.Responses: `"tool_choice"`}},
	{feature: "Tool calls and results in history", req: map[llmapi.Dialect]string{llmapi.Messages: `"tool_result".*"tool_use"|"tool_use".*"tool_result"`,
		llmapi.ChatCompletions: `"role":"tool"`, llmapi.GenerateContent: `"functionResponse":\{"name":"\w+"`, llmapi.Responses: `"function_call".*"function_call_output"`}},
	{feature: "Stop sequences", req: map[llmapi.Dialect]string{llmapi.Messages: `"stop_sequences"`, llmapi.ChatCompletions: `"stop":\[`, llmapi.GenerateContent: `"stopSequences"`},
		na: map[direction]string{{llmapi.Responses, llmapi.ChatCompletions}: "r", {llmapi.Responses, llmapi.Messages}: "r", {llmapi.Responses, llmapi.GenerateContent}: "r",
			{llmapi.ChatCompletions, llmapi.Responses}: "r", {llmapi.Messages, llmapi.Responses}: "r", {llmapi.GenerateContent, llmapi.Responses}: "r"}},
	{feature: "Max tokens", req: map[llmapi.Dialect]string{llmapi.Messages: `"max_tokens":\d`, llmapi.ChatCompletions: `"max_tokens":\d`, llmapi.GenerateContent: `"maxOutputTokens"`, llmapi.Responses: `"max_output_tokens":\d`}},
	{feature: "Temperature / top_p", req: map[llmapi.Dialect]string{llmapi.Messages: `"temperature"`, llmapi.ChatCompletions: `"temperature"`, llmapi.GenerateContent: `"temperature"`, llmapi.Responses: `"temperature"`},
		na: map[direction]string{{llmapi.ChatCompletions, llmapi.Messages}: "tt", {llmapi.Responses, llmapi.Messages}: "tt", {llmapi.GenerateContent, llmapi.Messages}: "tt"}},
	{feature: "Top-k, seed, presence / frequency penalties", req: map[llmapi.Dialect]string{llmapi.Messages: `"top_k":\d`, llmapi.ChatCompletions: `"seed":\d`,
		llmapi.GenerateContent: `"topK":\d`},
		na: map[direction]string{{llmapi.Responses, llmapi.ChatCompletions}: "rp", {llmapi.Responses, llmapi.Messages}: "rp", {llmapi.Responses, llmapi.GenerateContent}: "rp",
			{llmapi.ChatCompletions, llmapi.Responses}: "rp", {llmapi.Messages, llmapi.Responses}: "rp", {llmapi.GenerateContent, llmapi.Responses}: "rp",
			{llmapi.Messages, llmapi.ChatCompletions}: "kc", {llmapi.ChatCompletions, llmapi.Messages}: "kt", {llmapi.GenerateContent, llmapi.Messages}: "kt"}},
	{feature: "JSON mode / JSON schema", req: map[llmapi.Dialect]string{llmapi.Messages: `"name":"structured_output"`, llmapi.ChatCompletions: `"response_format"`,
		llmapi.GenerateContent: `"responseMimeType"`, llmapi.Responses: `"text":\{"format":\{`},
		na: map[direction]string{{llmapi.Messages, llmapi.ChatCompletions}: "ja", {llmapi.Messages, llmapi.GenerateContent}: "ja", {llmapi.Messages, llmapi.Responses}: "ja"}},
	{feature: "Thinking / reasoning request", req: map[llmapi.Dialect]string{llmapi.Messages: `"thinking":\{"budget_tokens"`, llmapi.ChatCompletions: `"reasoning_effort"`, llmapi.GenerateContent: `"thinkingConfig"`,
		llmapi.Responses: `"reasoning":\{"effort"`},
		gaps: map[direction]string{{llmapi.Messages, llmapi.ChatCompletions}: "b", {llmapi.GenerateContent, llmapi.ChatCompletions}: "gb"}},
	{feature: "Thinking signatures sent back", req: map[llmapi.Dialect]string{llmapi.Messages: `"signature":"E`, llmapi.GenerateContent: `"thoughtSignature":"CiQB0e"`},
		na: map[direction]string{{llmapi.Messages, llmapi.ChatCompletions}: "s", {llmapi.Responses, llmapi.ChatCompletions}: "s", {llmapi.GenerateContent, llmapi.ChatCompletions}: "s",
			{llmapi.ChatCompletions, llmapi.Responses}: "rs", {llmapi.Messages, llmapi.Responses}: "rs", {llmapi.GenerateContent, llmapi.Responses}: "rs"}},
	{feature: "Prompt-cache markers (cache_control)", req: map[llmapi.Dialect]string{llmapi.Messages: `"cache_control"`},
		na: map[direction]string{{llmapi.Messages, llmapi.ChatCompletions}: "c", {llmapi.Messages, llmapi.GenerateContent}: "c", {llmapi.ChatCompletions, llmapi.GenerateContent}: "c", {llmapi.Responses, llmapi.ChatCompletions}: "c", {llmapi.Responses, llmapi.GenerateContent}: "c",
			{llmapi.GenerateContent, llmapi.ChatCompletions}: "c", {llmapi.GenerateContent, llmapi.Messages}: "gc", {llmapi.ChatCompletions, llmapi.Responses}: "c", {llmapi.Messages, llmapi.Responses}: "c", {llmapi.GenerateContent, llmapi.Responses}: "gc"},
		gaps: map[direction]string{{llmapi.Responses, llmapi.Messages}: "rc"}},
	{feature: "Streamed text", out: map[llmapi.Dialect]string{llmapi.ChatCompletions: `"content":"\w`, llmapi.Messages: `"text_delta"`, llmapi.Responses: `response\.output_text\.delta`,
		llmapi.GenerateContent: `data: \{"candidates":\[\{"content":\{"parts":\[\{"text":"\w`}},
	{feature: "Streamed tool-call arguments, fragment by fragment", out: map[llmapi.Dialect]string{
		llmapi.ChatCompletions: `"arguments":"(?:[^"\\]|\\.)+"\},"index":\d\}`, llmapi.Messages: `"partial_json":"[^"]+"`, llmapi.Responses: `function_call_arguments\.delta`},
		na: map[direction]string{{llmapi.GenerateContent, llmapi.ChatCompletions}: "g", {llmapi.GenerateContent, llmapi.Messages}: "g", {llmapi.GenerateContent, llmapi.Responses}: "g"}},
	{feature: "Parallel tool calls with distinct indexes", out: map[llmapi.Dialect]string{
		llmapi.ChatCompletions: `"index":1,"type":"function"`, llmapi.Messages: `"type":"tool_use"\},"index":[1-9]`, llmapi.Responses: `"status":"completed","type":"function_call"\},\{"arguments"`,
		llmapi.GenerateContent: `"functionCall":\{"args":\{[^}]*\},"id":"\w+","name":"\w+"\}\}\],"role":"model"\},"index":0\}\][^\n]*\n\ndata: [^\n]*"functionCall"`}},
	{feature: "Tool call ends as tool_calls / tool_use", out: map[llmapi.Dialect]string{
		llmapi.ChatCompletions: `"finish_reason":"tool_calls"`, llmapi.Messages: `"stop_reason":"tool_use"`, llmapi.Responses: `"type":"function_call"`,
		llmapi.GenerateContent: `"functionCall"[^\n]*\n\ndata: \{"candidates":\[\{"content":\{"parts":\[\],"role":"model"\},"finishReason":"STOP"`}},
	{feature: "Thinking / reasoning stream", out: map[llmapi.Dialect]string{
		llmapi.ChatCompletions: `"reasoning_content"`, llmapi.Messages: `"thinking_delta"`, llmapi.Responses: `response\.reasoning_summary_text\.delta`, llmapi.GenerateContent: `"text":"[^"]+","thought":true`}},
	{feature: "Thinking signatures to the client", out: map[llmapi.Dialect]string{
		llmapi.ChatCompletions: `"signature":"(E|rs_)|__ts__`, llmapi.Messages: `"signature_delta"|__ts__`, llmapi.Responses: `"encrypted_content"|__ts__`, llmapi.GenerateContent: `"thoughtSignature":"`},
		na: map[direction]string{{llmapi.Messages, llmapi.ChatCompletions}: "s", {llmapi.Responses, llmapi.ChatCompletions}: "s", {llmapi.GenerateContent, llmapi.ChatCompletions}: "s"}},
	{feature: "Usage: cached input tokens", out: map[llmapi.Dialect]string{
		llmapi.ChatCompletions: `"cached_tokens":[1-9]`, llmapi.Messages: `"cache_read_input_tokens":[1-9]`, llmapi.Responses: `"cached_tokens":[1-9]`, llmapi.GenerateContent: `"cachedContentTokenCount":[1-9]`}},
	{feature: "Usage: cache-write tokens", out: map[llmapi.Dialect]string{llmapi.ChatCompletions: `"cache_write_tokens":[1-9]`, llmapi.Messages: `"cache_creation_input_tokens":[1-9]`,
		llmapi.Responses: `"cache_write_tokens":[1-9]`},
		na: map[direction]string{{llmapi.Messages, llmapi.ChatCompletions}: "w", {llmapi.Messages, llmapi.GenerateContent}: "w", {llmapi.ChatCompletions, llmapi.GenerateContent}: "w", {llmapi.Responses, llmapi.ChatCompletions}: "w", {llmapi.Responses, llmapi.GenerateContent}: "w",
			{llmapi.GenerateContent, llmapi.ChatCompletions}: "w", {llmapi.GenerateContent, llmapi.Messages}: "w", {llmapi.ChatCompletions, llmapi.Responses}: "w", {llmapi.Messages, llmapi.Responses}: "w", {llmapi.GenerateContent, llmapi.Responses}: "w"},
	},
	{feature: "Usage: reasoning tokens", out: map[llmapi.Dialect]string{llmapi.ChatCompletions: `"reasoning_tokens":[1-9]`, llmapi.Responses: `"reasoning_tokens":[1-9]`, llmapi.GenerateContent: `"thoughtsTokenCount":[1-9]`},
		na: map[direction]string{{llmapi.ChatCompletions, llmapi.Messages}: "a", {llmapi.Responses, llmapi.Messages}: "a", {llmapi.Messages, llmapi.ChatCompletions}: "n", {llmapi.Messages, llmapi.GenerateContent}: "n", {llmapi.GenerateContent, llmapi.Messages}: "a",
			{llmapi.Messages, llmapi.Responses}: "n"}},
	{feature: "Structured output: the forced tool call returned as the message content", outFrom: "structured", out: map[llmapi.Dialect]string{
		llmapi.ChatCompletions: `"delta":\{"content":"\{\\"city`, llmapi.Responses: `"delta":"\{\\"city[^\n]*"type":"response\.output_text\.delta"`,
		llmapi.GenerateContent: `"parts":\[\{"text":"\{\\"city`},
		na: map[direction]string{{llmapi.ChatCompletions, llmapi.GenerateContent}: "nj", {llmapi.Messages, llmapi.ChatCompletions}: "ja", {llmapi.Messages, llmapi.GenerateContent}: "ja", {llmapi.Responses, llmapi.ChatCompletions}: "nj",
			{llmapi.Responses, llmapi.GenerateContent}: "nj", {llmapi.GenerateContent, llmapi.ChatCompletions}: "nj", {llmapi.ChatCompletions, llmapi.Responses}: "nj", {llmapi.Messages, llmapi.Responses}: "ja", {llmapi.GenerateContent, llmapi.Responses}: "nj"}},
	{feature: "Error mid-stream as an in-band event", outFrom: "error_midstream", out: map[llmapi.Dialect]string{
		llmapi.ChatCompletions: `data: \{"error"`, llmapi.Messages: `event: error`, llmapi.Responses: `event: error`, llmapi.GenerateContent: `data: \{"error"`}},
	{feature: "Cut stream reported, never a clean end", outFrom: "truncated", out: map[llmapi.Dialect]string{
		llmapi.ChatCompletions: `-- end: \S`, llmapi.Messages: `-- end: \S`, llmapi.Responses: `-- end: \S`, llmapi.GenerateContent: `-- end: \S`}},
}

// notes explain the ✗ and — cells.
var notes = map[string]string{
	"r":  "The Responses API has no stop sequences.",
	"rp": "The Responses API has no top_k, seed or penalties.",
	"tt": "Anthropic refuses a temperature other than 1 and a top_p under 0.95 while thinking, which the full fixtures ask for: the temperature is left out and top_p raised to 0.95; without thinking, both are sent (TestThinkingSampling).",
	"kt": "Anthropic refuses top_k while thinking, which the full fixtures ask for; without thinking, top_k is sent (TestSamplingParams).",
	"kc": "Anthropic's only one of these is top_k, which Chat Completions does not have (the seed and penalties go to Chat from Chat and Gemini clients).",
	"j":  "Anthropic's Messages API has no JSON mode; the format request is dropped, not faked.",
	"nj": "The provider takes the JSON schema natively (row above), so its answer needs no conversion.",
	"ja": "Anthropic clients have no JSON mode to ask for.",
	"b":  "An Anthropic thinking budget has no Chat Completions equivalent (reasoning_effort is only sent when the client gave an effort).",
	"s":  "Chat Completions providers send no signatures, and need none back.",
	"c":  "The target has no cache markers (OpenAI and Gemini cache implicitly).",
	"rc": "The Responses API has no cache_control markers to pass on.",
	"w":  "The client's API has no cache-write count (and the provider reports none).",
	"rw": "The Responses API usage has no cache-write field.",
	"a":  "Anthropic does not report reasoning tokens separately.",
	"n":  "The Anthropic API has no reasoning-token field.",
	"g":  "Gemini carries a function call's arguments as one object, so a call reaches a Gemini client whole, in one chunk, when it is complete.",
	"gb": "A Gemini thinking budget has no Chat Completions equivalent (reasoning_effort is only sent for a thinkingLevel).",
	"rs": "Only OpenAI's own reasoning (its item id and encrypted_content) can go back to it; the fixtures' signatures come from Anthropic and Gemini and are left out. TestResponsesProviderRoundTrip proves OpenAI's own round trip.",
	"gc": "Gemini clients have no cache markers to pass on (Gemini caches implicitly).",
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
	p, err := fixturePlan(d.client, d.provider, src)
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
		p := &Plan{Client: d.client, Provider: d.provider, Stream: true, req: fixtureRequest(d.client, name, true)}
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
		p := &Plan{Client: d.client, Provider: d.provider, req: fixtureRequest(d.client, in, false)}
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
	for _, k := range []string{"r", "rp", "tt", "kc", "kt", "j", "ja", "nj", "b", "gb", "s", "rs", "c", "rc", "gc", "w", "rw", "a", "n", "g"} {
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
