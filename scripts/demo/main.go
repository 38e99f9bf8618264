// Command strait-demo streams one completion through a Strait edge with an
// official SDK and prints it as it arrives, with the time to first token.
// The quick start uses it; it is also a template for calling Strait from Go.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"iter"
	"net/http"
	"os"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"
)

func main() {
	var (
		base   = flag.String("base-url", "https://localhost:9443", "edge URL")
		caFile = flag.String("ca", "", "PEM file of the CA that signed the edge's certificate (empty: system roots)")
		key    = flag.String("key", os.Getenv("STRAIT_CLIENT_KEY"), "Strait client key")
		api    = flag.String("api", "openai", "SDK to use: openai, anthropic or gemini")
		model  = flag.String("model", "", "model (default per API)")
		prompt = flag.String("prompt", "Explain in two sentences why a persistent tunnel cuts time to first token.", "prompt")
		wait   = flag.Duration("wait", 0, "wait up to this long for the edge to report a tunnel session")
	)
	flag.Parse()
	if err := run(*base, *caFile, *key, *api, *model, *prompt, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "\nstrait-demo:", err)
		os.Exit(1)
	}
}

func run(base, caFile, key, api, model, prompt string, wait time.Duration) error {
	hc, err := httpClient(caFile)
	if err != nil {
		return err
	}
	if wait > 0 {
		if err := waitHealthy(hc, base, wait); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var pieces iter.Seq2[string, error]
	switch api {
	case "openai":
		pieces = openaiStream(ctx, hc, base, key, or(model, "gpt-4o-mini"), prompt)
	case "anthropic":
		pieces = anthropicStream(ctx, hc, base, key, or(model, "claude-haiku-4-5"), prompt)
	case "gemini":
		pieces = geminiStream(ctx, hc, base, key, or(model, "gemini-2.5-flash"), prompt)
	default:
		return fmt.Errorf("unknown api %q", api)
	}
	start := time.Now()
	var first time.Duration
	for p, err := range pieces {
		if err != nil {
			return err
		}
		if first == 0 && p != "" {
			first = time.Since(start)
		}
		fmt.Print(p)
	}
	fmt.Printf("\n\n[%s via Strait: first token after %v, complete after %v]\n", api, first.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return nil
}

func openaiStream(ctx context.Context, hc *http.Client, base, key, model, prompt string) iter.Seq2[string, error] {
	c := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey(key), option.WithHTTPClient(hc))
	return func(yield func(string, error) bool) {
		s := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)}})
		defer s.Close()
		for s.Next() {
			if ch := s.Current(); len(ch.Choices) > 0 && !yield(ch.Choices[0].Delta.Content, nil) {
				return
			}
		}
		if err := s.Err(); err != nil {
			yield("", err)
		}
	}
}

func anthropicStream(ctx context.Context, hc *http.Client, base, key, model, prompt string) iter.Seq2[string, error] {
	c := anthropic.NewClient(anthropicopt.WithBaseURL(base), anthropicopt.WithAPIKey(key), anthropicopt.WithHTTPClient(hc))
	return func(yield func(string, error) bool) {
		s := c.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 512,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))}})
		defer s.Close()
		for s.Next() {
			if d := s.Current().AsAny(); d != nil {
				if ev, ok := d.(anthropic.ContentBlockDeltaEvent); ok && !yield(ev.Delta.Text, nil) {
					return
				}
			}
		}
		if err := s.Err(); err != nil {
			yield("", err)
		}
	}
}

func geminiStream(ctx context.Context, hc *http.Client, base, key, model, prompt string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		c, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: key, Backend: genai.BackendGeminiAPI,
			HTTPClient: hc, HTTPOptions: genai.HTTPOptions{BaseURL: base}})
		if err != nil {
			yield("", err)
			return
		}
		for resp, err := range c.Models.GenerateContentStream(ctx, model, genai.Text(prompt), nil) {
			if err != nil {
				yield("", err)
				return
			}
			if !yield(resp.Text(), nil) {
				return
			}
		}
	}
}

func httpClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificates", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr}, nil
}

// waitHealthy polls the edge's /healthz until it reports a tunnel session.
func waitHealthy(hc *http.Client, base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := hc.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("edge at %s not ready after %v: %w", base, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
