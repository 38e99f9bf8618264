package guard

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/proto/llmapi"
)

// TestInspectBase64Text: a text file sent inline as base64 (Gemini's
// inlineData, Anthropic's base64 document source, a Chat file part's or
// a Responses input_file's data URL) is decoded and read; a masked value
// in it crosses as its placeholder, encoded again as the client's data
// was, and comes back in the answer. A PDF's or an image's bytes are not
// read.
func TestInspectBase64Text(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile"}})
	const phone = "13812345678"
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	file := b64("call " + phone + "\n")
	raw := base64.RawURLEncoding.EncodeToString([]byte("call " + phone + " \xff\xfe"))
	for _, tc := range []struct {
		family     llmapi.Family
		path, body string
	}{
		{llmapi.Gemini, "/v1beta/models/g:generateContent", `{"contents":[{"parts":[{"inlineData":{"mimeType":"text/plain","data":"` + file + `"}}]}]}`},
		{llmapi.Gemini, "/v1beta/models/g:generateContent", `{"contents":[{"parts":[{"inline_data":{"data":"` + raw + `","mime_type":"text/csv; charset=utf-8"}}]}]}`},
		{llmapi.Gemini, "/v1beta/models/g:generateContent", `{"contents":[{"parts":[{"inlineData":{"mimeType":"application/pdf","mimeType":"application/json","data":"` + b64(`{"to":"`+phone+`"}`) + `"}}]}]}`},
		{llmapi.Gemini, "/v1beta/models/g:generateContent", `{"contents":[{"parts":[{"inlineData":{"data":"` + file + `"}}]}]}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"text/plain","data":"` + file + `"}}]}]}`},
		{llmapi.OpenAI, "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"file","file":{"filename":"a.txt","file_data":"data:text/plain;base64,` + file + `"}}]}]}`},
		{llmapi.OpenAI, "/v1/responses", `{"input":[{"role":"user","content":[{"type":"input_file","filename":"a.md","file_data":"data:text/markdown;base64,` + file + `"}]}]}`},
	} {
		o, err := p.Inspect(tc.family, tc.path, []byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		got := decodedData(t, string(o.Body))
		if strings.Contains(got, phone) || !strings.Contains(got, "⟦PHONE_1⟧") || o.Vault.Restore(got) == got {
			t.Errorf("%s:\nsent %s (%q)", tc.body, o.Body, got)
		}
		o.Release()
	}
	pdf := b64("%PDF-1.7 " + phone)
	for _, tc := range []struct {
		family     llmapi.Family
		path, body string
	}{
		{llmapi.Gemini, "/v1beta/models/g:generateContent", `{"contents":[{"parts":[{"inlineData":{"mimeType":"application/pdf","data":"` + pdf + `"}}]}]}`},
		{llmapi.Gemini, "/v1beta/models/g:generateContent", `{"contents":[{"parts":[{"inlineData":{"data":"` + pdf + `"}}]}]}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + pdf + `"}}]}]}`},
		{llmapi.OpenAI, "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,` + pdf + `"}}]}]}`},
	} {
		o, err := p.Inspect(tc.family, tc.path, []byte(tc.body))
		if err != nil || string(o.Body) != tc.body {
			t.Errorf("binary data rewritten: %v %s", err, o.Body)
		}
		o.Release()
	}
}

// decodedData is the base64 data (after a data URL's comma, if any) of
// the first data or file_data member of body, decoded.
func decodedData(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`"(?:data|file_data)":"(?:data:[^,]*,)?([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no data in %s", body)
	}
	for _, enc := range base64Encodings {
		if b, err := enc.DecodeString(m[1]); err == nil {
			return string(b)
		}
	}
	t.Fatalf("data is not base64: %s", m[1])
	return ""
}

// TestInspectBase64Unreadable: text data that does not decode (or a data
// URL that is not base64) cannot be read, so under a masking policy it
// may not cross: Inspect refuses it, at once even when it is large; and
// a word to block inside a text file blocks.
func TestInspectBase64Unreadable(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile"}, Words: WordsFile{File: wordsFile(t, "绝密\tsecret\n")}})
	huge := strings.Repeat("A", 8<<20) + "!"
	for _, body := range []string{
		`{"contents":[{"parts":[{"inlineData":{"mimeType":"text/plain","data":"call 13812345678"}}]}]}`,
		`{"contents":[{"parts":[{"inlineData":{"mimeType":"text/plain","data":"` + huge + `"}}]}]}`,
		`{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:text/plain,call%2013812345678"}}]}]}`,
		`{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"call 13812345678"}}]}]}`,
	} {
		path, family := "/v1beta/models/g:generateContent", llmapi.Gemini
		if strings.Contains(body, "file_data") {
			path, family = "/v1/chat/completions", llmapi.OpenAI
		}
		start := time.Now()
		if _, err := p.Inspect(family, path, []byte(body)); !errors.Is(err, ErrUninspectable) {
			t.Errorf("%.80s: %v", body, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%.80s: took %v", body, d)
		}
	}
	body := `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"text/plain","data":"` +
		base64.StdEncoding.EncodeToString([]byte("这是绝密文件")) + `"}}]}]}`
	o, err := p.Inspect(llmapi.Anthropic, "/v1/messages", []byte(body))
	if err != nil || strings.Join(o.Blocked, ",") != "secret" {
		t.Errorf("blocked %v: %v", o.Blocked, err)
	}
}
