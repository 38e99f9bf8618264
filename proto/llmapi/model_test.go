package llmapi

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestParse covers the requests a hostile client crafts so that two
// readers disagree on the model, next to the ordinary ones.
func TestParse(t *testing.T) {
	long := strings.Repeat("m", MaxLen+1)
	tests := []struct {
		name, family, path, body string
		want                     Request
		err                      error
	}{
		{"chat", "openai", "/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true}`, Request{Model: "gpt-4o-mini", Stream: true}, nil},
		{"leading whitespace", "openai", "/v1/chat/completions", " \r\n\t{\"model\":\"gpt-4o\"}", Request{Model: "gpt-4o"}, nil},
		{"escaped name", "openai", "/v1/chat/completions", `{"mod\u0065l":"gpt-4o"}`, Request{Model: "gpt-4o"}, nil},
		{"other case is not the model", "openai", "/v1/chat/completions", `{"model":"gpt-4o","Model":"gpt-4o-mini"}`, Request{Model: "gpt-4o"}, nil},
		{"only other case", "openai", "/v1/chat/completions", `{"MODEL":"gpt-4o"}`, Request{}, nil},
		{"nested model ignored", "anthropic", "/v1/messages", `{"metadata":{"model":"x"},"model":"claude-3"}`, Request{Model: "claude-3"}, nil},
		{"empty body", "openai", "/v1/models", ``, Request{}, nil},
		{"whitespace body", "openai", "/v1/models", " \n", Request{}, nil},
		{"no model", "openai", "/v1/chat/completions", `{"messages":[]}`, Request{}, nil},
		{"stream not a bool", "openai", "/v1/chat/completions", `{"model":"a","stream":"yes"}`, Request{Model: "a"}, nil},
		{"model twice", "openai", "/v1/chat/completions", `{"model":"gpt-4o-mini","model":"gpt-4o"}`, Request{}, ErrBadModel},
		{"model twice, escaped", "openai", "/v1/chat/completions", `{"model":"gpt-4o-mini","m\u006fdel":"gpt-4o"}`, Request{}, ErrBadModel},
		{"stream twice", "openai", "/v1/chat/completions", `{"model":"a","stream":false,"stream":true}`, Request{}, ErrBadModel},
		{"model a number", "openai", "/v1/chat/completions", `{"model":4}`, Request{}, ErrBadModel},
		{"model null", "openai", "/v1/chat/completions", `{"model":null}`, Request{}, ErrBadModel},
		{"model too long", "openai", "/v1/chat/completions", `{"model":"` + long + `"}`, Request{}, ErrBadModel},
		{"model at the limit", "openai", "/v1/chat/completions", `{"model":"` + long[1:] + `"}`, Request{Model: long[1:]}, nil},
		{"trailing object", "openai", "/v1/chat/completions", `{"model":"a"}{"model":"b"}`, Request{}, ErrNotJSON},
		{"trailing garbage", "openai", "/v1/chat/completions", `{"model":"a"} x`, Request{}, ErrNotJSON},
		{"truncated", "openai", "/v1/chat/completions", `{"model":"a",`, Request{}, ErrNotJSON},
		{"array", "openai", "/v1/chat/completions", `[{"model":"a"}]`, Request{}, ErrNotJSON},
		{"multipart", "openai", "/v1/audio/transcriptions", "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n", Request{}, ErrNotJSON},
		{"byte order mark", "openai", "/v1/chat/completions", "\ufeff{\"model\":\"a\"}", Request{}, ErrNotJSON},
		{"gemini", "gemini", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", `{"contents":[]}`, Request{Model: "gemini-2.5-flash", InPath: true, Stream: true}, nil},
		{"gemini body model ignored", "gemini", "/v1beta/models/gemini-2.5-flash:generateContent", `{"model":"gemini-2.5-pro","model":"x"}`, Request{Model: "gemini-2.5-flash", InPath: true}, nil},
		{"gemini not JSON", "gemini", "/v1beta/models/gemini-2.5-flash:generateContent", `x`, Request{Model: "gemini-2.5-flash", InPath: true}, ErrNotJSON},
		{"gemini get model", "gemini", "/v1beta/models/gemini-2.5-pro", ``, Request{Model: "gemini-2.5-pro", InPath: true}, nil},
		{"gemini list", "gemini", "/v1beta/models", ``, Request{}, nil},
		{"gemini nested path", "gemini", "/v1beta/models/gemini-2.5-pro/models/gemini-2.5-flash:generateContent", ``, Request{}, ErrBadModel},
		{"gemini empty model", "gemini", "/v1beta/models/:generateContent", ``, Request{}, ErrBadModel},
		{"gemini model too long", "gemini", "/v1beta/models/" + long + ":generateContent", ``, Request{}, ErrBadModel},
		{"openai path is not a gemini model", "openai", "/v1/models/ft:gpt-4o-mini:org::abc", ``, Request{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(Family(tt.family), tt.path, []byte(tt.body), nil)
			if !errors.Is(err, tt.err) || (err != nil) != (tt.err != nil) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParseVisits: members other than the model reach the visitor raw, in
// order, in the same pass.
func TestParseVisits(t *testing.T) {
	var names []string
	var maxTokens string
	_, err := Parse("openai", "/v1/chat/completions", []byte(`{"max_tokens": 12 ,"model":"a","messages":[{"x":1}]}`),
		func(name string, v []byte) {
			names = append(names, name)
			if name == "max_tokens" {
				maxTokens = string(v)
			}
		})
	if err != nil || strings.Join(names, ",") != "max_tokens,messages" || maxTokens != "12" {
		t.Fatalf("visited %v, max_tokens %q, err %v", names, maxTokens, err)
	}
}

func TestTruncate(t *testing.T) {
	if s := Truncate("short"); s != "short" {
		t.Errorf("short string changed: %q", s)
	}
	s := Truncate(strings.Repeat("é", MaxLen)) // two bytes each: the cut falls inside a rune
	if !utf8.ValidString(s) || len(s) > MaxLen+len("…") || !strings.HasSuffix(s, "…") {
		t.Errorf("truncated to %d bytes, valid %v", len(s), utf8.ValidString(s))
	}
}

// FuzzParse: no input panics, errors are one of the two sentinels, a
// model is never longer than MaxLen, and a valid body reads the same
// walked in place as through the Decoder (checkSameParse).
func FuzzParse(f *testing.F) {
	f.Add("openai", "/v1/chat/completions", []byte(`{"model":"a","stream":true}`))
	f.Add("gemini", "/v1beta/models/g:generateContent", []byte(`{"contents":[]}`))
	for _, b := range parseSeeds {
		f.Add("openai", "/v1/chat/completions", []byte(b))
	}
	f.Fuzz(func(t *testing.T, family, path string, body []byte) {
		r, err := Parse(Family(family), path, body, func(string, []byte) {})
		if err != nil && !errors.Is(err, ErrNotJSON) && !errors.Is(err, ErrBadModel) {
			t.Fatalf("unexpected error %v", err)
		}
		if len(r.Model) > MaxLen {
			t.Fatalf("model of %d bytes", len(r.Model))
		}
		checkSameParse(t, body)
	})
}

// parseSeeds are bodies whose members the in-place walk must name, split
// and judge exactly as the Decoder does.
var parseSeeds = []string{
	parseBenchBody,
	`{}`,
	` { "model" : "a" , "stream" : true , "n" : -1.5e3 , "x" : [ 1 , { "y" : "}" } ] } `,
	`{"mod\u0065l":"gpt-4o","m\u006fdel":"x"}`,
	`{"model":"a\"b","stream":false,"stream":true}`,
	`{"model":null}`,
	`{"model":"a","Model":"b","MODEL":"c"}`,
	`{"":1,"\u0000":2,"s\ud83d\ude00":"\ud83d"}`,
	"{\"k\xff\":1,\"model\":\"\xfe\"}",
	`{"a":{"model":"x"},"b":["model"],"model":"y","c":"\\"}`,
	`{"model":"` + strings.Repeat("m", MaxLen+1) + `"}`,
	`{"stream":true,"stream":1}`,
	`[{"model":"a"}]`,
	`"model"`,
}

// member is one visited member.
type member struct{ name, value string }

// checkSameParse fails when a body json.Valid accepts reads differently
// walked in place (parseValid) than through the Decoder (parseStream): the
// request, the error and the members the visitor sees.
func checkSameParse(t *testing.T, body []byte) {
	t.Helper()
	if !json.Valid(body) {
		return
	}
	run := func(parse func(*Request, []byte, Visit) error) (Request, error, []member) {
		var r Request
		var seen []member
		err := parse(&r, body, func(name string, v []byte) { seen = append(seen, member{name, string(v)}) })
		return r, err, seen
	}
	r1, err1, seen1 := run(parseValid)
	r2, err2, seen2 := run(parseStream)
	if r1 != r2 || !errors.Is(err1, ErrBadModel) != !errors.Is(err2, ErrBadModel) || (err1 == nil) != (err2 == nil) ||
		!slices.Equal(seen1, seen2) {
		t.Errorf("%q: in place %+v, %v, %q; Decoder %+v, %v, %q", body, r1, err1, seen1, r2, err2, seen2)
	}
	var n1, n2 Request // and without a visitor, as the relay parses
	if e1, e2 := parseValid(&n1, body, nil), parseStream(&n2, body, nil); n1 != n2 || (e1 == nil) != (e2 == nil) {
		t.Errorf("%q without a visitor: in place %+v, %v; Decoder %+v, %v", body, n1, e1, n2, e2)
	}
}

// TestParseInPlaceMatchesDecoder runs checkSameParse over the seeds.
func TestParseInPlaceMatchesDecoder(t *testing.T) {
	for _, b := range parseSeeds {
		checkSameParse(t, []byte(b))
	}
}

// TestParseAllocations pins the point of the in-place walk: the relay's
// parse of a chat request allocates the model string and the Request the
// parser fills (71 allocations through the Decoder).
func TestParseAllocations(t *testing.T) {
	body := []byte(parseBenchBody)
	n := testing.AllocsPerRun(100, func() {
		if _, err := Parse(OpenAI, "/v1/chat/completions", body, nil); err != nil {
			t.Fatal(err)
		}
	})
	switch {
	case raceEnabled:
		t.Logf("%v allocations per request; not checked under the race detector, which empties sync.Pools", n)
	case n > 2:
		t.Errorf("Parse allocates %v times per request, want at most 2 (the model, the Request)", n)
	}
}

// parseBenchBody is a chat request as SDKs send it.
const parseBenchBody = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},` +
	`{"role":"user","content":"Say something about the weather in \"Lisbon\" today."}],"stream":true,` +
	`"stream_options":{"include_usage":true},"temperature":0.7,"max_tokens":1024}`

// BenchmarkParse is the cost of reading a request's model, as the edge
// (with a visitor) and the relay (without) do for every request.
func BenchmarkParse(b *testing.B) {
	body := []byte(parseBenchBody)
	for _, tc := range []struct {
		name  string
		visit Visit
	}{{"relay", nil}, {"edge", func(string, []byte) {}}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r, err := Parse(OpenAI, "/v1/chat/completions", body, tc.visit); err != nil || r.Model != "gpt-4o-mini" {
					b.Fatal(r, err)
				}
			}
		})
	}
}
