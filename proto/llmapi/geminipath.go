package llmapi

import "strings"

// GeminiModelPath splits a Gemini model path, /{version}/models/{model} or
// /{version}/models/{model}:{method} (version v1beta, v1 or v1alpha). A
// method is a bare identifier (generateContent, countTokens, ...) and a
// Gemini model name has no colon, so an OpenAI fine-tuned model id such as
// ft:gpt-4o-mini-2024-07-18:acme::AbC123, which shares the /v1/models/
// path, is not taken for a Gemini call: the edge and the relay both ask
// here, so they cannot disagree about which provider a path belongs to.
func GeminiModelPath(p string) (model, method string, ok bool) {
	for _, prefix := range geminiModelPrefixes {
		rest, found := strings.CutPrefix(p, prefix)
		if !found || rest == "" || strings.Contains(rest, "/") {
			continue
		}
		model, method, _ = strings.Cut(rest, ":")
		return model, method, model != "" && isIdentifier(method, true)
	}
	return "", "", false
}

// geminiModelPrefixes are where Gemini's model resources live.
var geminiModelPrefixes = [...]string{"/v1beta/models/", "/v1/models/", "/v1alpha/models/"}

// UnderGeminiModels reports whether p lies under one of the prefixes of
// Gemini's model resources (whether or not it names one model).
func UnderGeminiModels(p string) bool {
	for _, prefix := range geminiModelPrefixes {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// isIdentifier reports s made of ASCII letters only (empty allowed when
// emptyOK).
func isIdentifier(s string, emptyOK bool) bool {
	if s == "" {
		return emptyOK
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
