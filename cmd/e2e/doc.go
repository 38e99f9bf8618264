// Package e2e holds Strait's end-to-end tests: the official OpenAI,
// Anthropic and Gemini SDKs talk to a real edge over HTTPS, the edge to a real
// relay over the mutual-TLS tunnel, and the relay to the local fake provider,
// all on loopback sockets and through the same Build code the binaries run.
package e2e
