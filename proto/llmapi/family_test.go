package llmapi

import (
	"net/http"
	"testing"
)

// TestGuess proves a rejected request still gets an error in the
// shape its SDK parses, judged by the credential style it used.
func TestGuess(t *testing.T) {
	tests := []struct {
		h     http.Header
		query string
		want  Family
	}{
		{http.Header{}, "", OpenAI},
		{http.Header{"Authorization": {"Bearer x"}}, "", OpenAI},
		{http.Header{"X-Goog-Api-Key": {"x"}}, "", Gemini},
		{http.Header{}, "alt=sse&key=x", Gemini},
		{http.Header{"Anthropic-Version": {"2023-06-01"}}, "", Anthropic},
		{http.Header{"X-Api-Key": {"x"}}, "", Anthropic},
		{http.Header{"X-Api-Key": {"x"}, "X-Goog-Api-Key": {"y"}}, "", Gemini},
	}
	for _, tc := range tests {
		if got := Guess(tc.h, tc.query); got != tc.want {
			t.Errorf("Guess(%v, %q) = %q, want %q", tc.h, tc.query, got, tc.want)
		}
	}
}
