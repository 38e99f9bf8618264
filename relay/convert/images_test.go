package convert

import (
	"fmt"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// TestGeminiImageOutput: an image Gemini generates (an inlineData part of
// the answer) reaches each client in its API's form for an image in an
// answer: Chat's message.images / delta.images data URL (OpenRouter's and
// LiteLLM's convention), a Responses image_generation_call item, and, as
// Anthropic's answers cannot hold an image, a text block saying it was
// left out; never dropped without a word, never as its base64 in text.
func TestGeminiImageOutput(t *testing.T) {
	const (
		png   = `{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}}`
		thumb = `{"inlineData":{"mimeType":"image/png","data":"VGhvdWdodA=="},"thought":true}` // an interim image the model thought with
		tail  = `"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":9,"totalTokenCount":14},"modelVersion":"gemini-2.5-flash-image","responseId":"r1"}`
	)
	whole := func(parts string) string {
		return `{"candidates":[{"content":{"role":"model","parts":[` + parts + `]},"finishReason":"STOP","index":0}],` + tail
	}
	stream := func(parts string) string {
		var b strings.Builder
		for _, p := range strings.Split(parts, ";") {
			b.WriteString(`data: {"candidates":[{"content":{"role":"model","parts":[` + p + `]},"index":0}],"modelVersion":"gemini-2.5-flash-image","responseId":"r1"}` + "\n\n")
		}
		b.WriteString(`data: {"candidates":[{"content":{"role":"model","parts":[]},"finishReason":"STOP","index":0}],` + tail + "\n\n")
		return b.String()
	}
	const (
		dataURL = `{"image_url":{"url":"data:image/png;base64,iVBORw0KGgo="},"type":"image_url"}`
		omitted = `[image omitted: the model answered with an image (image/png), which the Anthropic Messages API cannot carry in an answer]`
	)
	cases := []struct {
		name   string
		client llmapi.Dialect
		stream bool
		parts  string   // the answer's parts; streamed, one chunk per ";"-separated part
		want   []string // in this order
	}{
		{"text and image", llmapi.ChatCompletions, false, `{"text":"Here it is:"},` + png,
			[]string{`"finish_reason":"stop"`, `"content":"Here it is:","images":[` + dataURL + `]`}},
		{"image only", llmapi.ChatCompletions, false, png, []string{`"content":"","images":[` + dataURL + `]`}},
		{"text and image", llmapi.ChatCompletions, true, `{"text":"Here it is:"};` + png,
			[]string{`"delta":{"content":"Here it is:"}`, `"delta":{"images":[` + dataURL + `]}`, `"finish_reason":"stop"`}},
		{"text and image", llmapi.Responses, false, `{"text":"Here it is:"},` + png,
			[]string{`"text":"Here it is:"`, `{"id":"ig_gen`, `","result":"iVBORw0KGgo=","status":"completed","type":"image_generation_call"}`, `"status":"completed"`}},
		{"text and image", llmapi.Responses, true, `{"text":"Here it is:"};` + png,
			[]string{`"delta":"Here it is:"`, "event: response.output_item.added\n", `"result":null,"status":"in_progress","type":"image_generation_call"`,
				"event: response.output_item.done\n", `"result":"iVBORw0KGgo=","status":"completed","type":"image_generation_call"`,
				"event: response.completed\n", `"result":"iVBORw0KGgo=","status":"completed","type":"image_generation_call"`}},
		{"text and image", llmapi.Messages, false, `{"text":"Here it is:"},` + png,
			[]string{`{"text":"Here it is:","type":"text"},{"text":"` + omitted + `","type":"text"}`, `"stop_reason":"end_turn"`}},
		{"image only", llmapi.Messages, false, png, []string{`"content":[{"text":"` + omitted + `","type":"text"}]`}},
		{"text and image", llmapi.Messages, true, `{"text":"Here it is:"};` + png,
			[]string{`"text":"Here it is:"`, `"index":1,"type":"content_block_start"`, `"text":"` + omitted + `"`, `"stop_reason":"end_turn"`}},
		// Images the model thought with are thoughts: no API carries them.
		{"thought image", llmapi.ChatCompletions, false, thumb + `,{"text":"Done."}`, []string{`"content":"Done."`}},
		{"thought image", llmapi.Messages, true, thumb + `;{"text":"Done."}`, []string{`"text":"Done."`}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s/stream=%v", tc.name, tc.client, tc.stream), func(t *testing.T) {
			body := whole(tc.parts)
			if tc.stream {
				body = stream(tc.parts)
			}
			got := respond(t, llmapi.GenerateContent, tc.client, tc.stream, body).body.String()
			inOrder(t, got, tc.want)
			for _, bad := range []string{`"type":"image"`, `"images"`, `image_generation_call`, "omitted", "VGhvdWdodA=="} {
				if !strings.Contains(strings.Join(tc.want, ""), bad) && strings.Contains(got, bad) {
					t.Errorf("unexpected %s in\n%s", bad, got)
				}
			}
		})
	}
}

// TestImageItemSentBack: a Responses client sends an answer's output back
// as the next input (and the conversation store does the same), so the
// image_generation_call item it got must be accepted there, and is left
// out of what the provider is asked.
func TestImageItemSentBack(t *testing.T) {
	body := `{"model":"gemini-2.5-flash-image","input":[{"role":"user","content":"Draw a cat"},` +
		`{"id":"ig_1","type":"image_generation_call","status":"completed","result":"iVBORw0KGgo="},` +
		`{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Here it is:"}]},` +
		`{"role":"user","content":"Make it blue"}]}`
	r, err := decodeResponsesRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, m := range r.Messages {
		for _, p := range m.Parts {
			if p.Kind != PartText {
				t.Errorf("%s part of kind %d, want text only", m.Role, p.Kind)
			}
			roles = append(roles, string(m.Role)+":"+p.Text)
		}
	}
	if got := strings.Join(roles, "|"); got != "user:Draw a cat|assistant:Here it is:|user:Make it blue" {
		t.Errorf("messages %s", got)
	}
}

// TestImageModalities: a Chat client asks for generated images with
// modalities ["text","image"] or ["image"] (OpenRouter's and LiteLLM's
// convention); Gemini's image models make them only when
// generationConfig.responseModalities names IMAGE. Gemini refuses IMAGE
// for the models that cannot make images, so it is sent only when the
// client asked for images, and to no other provider.
func TestImageModalities(t *testing.T) {
	body := func(extra string) string {
		return `{"model":"m",` + extra + `"messages":[{"role":"user","content":"draw a cat"}]}`
	}
	cases := []struct {
		name      string
		provider  llmapi.Dialect
		body      string
		want, not []string
	}{
		{"text and image", llmapi.GenerateContent, body(`"modalities":["text","image"],`),
			[]string{`"generationConfig":{"responseModalities":["TEXT","IMAGE"]}`}, nil},
		{"image only", llmapi.GenerateContent, body(`"modalities":["image"],`),
			[]string{`"responseModalities":["IMAGE"]`}, []string{"TEXT"}},
		{"streamed", llmapi.GenerateContent, body(`"stream":true,"modalities":["image","text"],`),
			[]string{`"responseModalities":["IMAGE","TEXT"]`}, nil},
		{"text only", llmapi.GenerateContent, body(`"modalities":["text"],`), nil, []string{"responseModalities", "generationConfig"}},
		{"not asked", llmapi.GenerateContent, body(""), nil, []string{"responseModalities"}},
		{"to anthropic", llmapi.Messages, body(`"modalities":["text","image"],`), nil, []string{"odalities", "IMAGE"}},
		{"to responses", llmapi.Responses, body(`"modalities":["text","image"],`), nil, []string{"odalities", "IMAGE"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { convertedHas(t, llmapi.ChatCompletions, tc.provider, tc.body, tc.want, tc.not) })
	}
}
