package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkRequestPath sends requests through the whole path (client TLS,
// edge, tunnel, relay, fake provider and back) over each transport, as an
// HTTP/1.1 client does:
//
//	go test -run '^$' -bench RequestPath -benchtime 2000x ./cmd/e2e
//
// unary is one request at a time (the added latency); parallel keeps 16 in
// flight (the CPU each request costs, both binaries together); stream
// reports the time to the first token of a streamed answer (ttft-ns/op).
// Run it under the machine's timing lock: the figures are only as quiet as
// the machine.
func BenchmarkRequestPath(b *testing.B) {
	for _, tr := range transports {
		s := newStack(b, stackOptions{transport: tr, quiet: true})
		client := s.http1Client()
		b.Run(tr+"/unary", func(b *testing.B) {
			for b.Loop() {
				benchChat(b, client, s, false)
			}
		})
		b.Run(tr+"/parallel", func(b *testing.B) {
			b.SetParallelism(8) // 16 clients on the 2-core machine
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchChat(b, client, s, false)
				}
			})
		})
		b.Run(tr+"/stream", func(b *testing.B) {
			var ttft time.Duration
			for b.Loop() {
				ttft += benchChat(b, client, s, true)
			}
			b.ReportMetric(float64(ttft.Nanoseconds())/float64(b.N), "ttft-ns/op")
		})
		client.CloseIdleConnections()
	}
}

// benchChat sends one chat completion and reads the whole answer; for a
// stream it returns the time to the first content event.
func benchChat(b *testing.B, client *http.Client, s *stack, stream bool) time.Duration {
	resp, start := postChat(b, client, s, stream, 3, 0)
	defer resp.Body.Close()
	if !stream {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		return 0
	}
	var first time.Duration
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if first == 0 && bytes.Contains(sc.Bytes(), []byte(`"content":"tok0"`)) {
			first = time.Since(start)
		}
	}
	if err := sc.Err(); err != nil || first == 0 {
		b.Fatalf("stream: first token after %v, err %v", first, err)
	}
	return first
}

// postChat sends a chat completion whose answer has tokens pieces
// intervalMs apart, and returns the 200 response and when it was sent.
func postChat(b *testing.B, client *http.Client, s *stack, stream bool, tokens, intervalMs int) (*http.Response, time.Time) {
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]` + map[bool]string{true: `,"stream":true}`, false: `}`}[stream]
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.edgeURL+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+clientKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Fake-Tokens", strconv.Itoa(tokens))
	req.Header.Set("X-Fake-Interval-Ms", strconv.Itoa(intervalMs))
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		b.Fatalf("status %d: %s", resp.StatusCode, msg)
	}
	return resp, start
}

// http1Client is an HTTP/1.1 client trusting the edge, like the Python
// and Node SDKs (s.client prefers HTTP/2).
func (s *stack) http1Client() *http.Client {
	tr := s.client.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	tr.TLSClientConfig = tr.TLSClientConfig.Clone()
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr}
}

// BenchmarkConcurrentStreams is the lab's loopback stream scenario in one
// process: 32 clients each stream answers of 50 tokens 20 ms apart, and the
// time to the first token (p50, p99) and the gap between events (p99) are
// reported. b.N is the number of streams; each lasts about a second.
//
//	go test -run '^$' -bench ConcurrentStreams -benchtime 96x ./cmd/e2e
func BenchmarkConcurrentStreams(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) {
			s := newStack(b, stackOptions{transport: tr, quiet: true})
			client := s.http1Client()
			defer client.CloseIdleConnections()
			var mu sync.Mutex
			var ttfts, gaps []time.Duration
			b.SetParallelism(16) // 32 clients on the 2-core machine
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					first, g := streamTimes(b, client, s)
					mu.Lock()
					ttfts, gaps = append(ttfts, first), append(gaps, g...)
					mu.Unlock()
				}
			})
			b.ReportMetric(ms(quantile(ttfts, 0.5)), "ttft-p50-ms")
			b.ReportMetric(ms(quantile(ttfts, 0.99)), "ttft-p99-ms")
			b.ReportMetric(ms(quantile(gaps, 0.99)), "gap-p99-ms")
		})
	}
}

// streamTimes streams one answer of 50 tokens 20 ms apart and returns the
// time to its first token and the gaps between its events.
func streamTimes(b *testing.B, client *http.Client, s *stack) (time.Duration, []time.Duration) {
	resp, start := postChat(b, client, s, true, 50, 20)
	defer resp.Body.Close()
	var first time.Duration
	var gaps []time.Duration
	last := start
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), []byte(`"content":"tok`)) && !bytes.Contains(sc.Bytes(), []byte(`"content":" tok`)) {
			continue
		}
		now := time.Now()
		if first == 0 {
			first = now.Sub(start)
		} else {
			gaps = append(gaps, now.Sub(last))
		}
		last = now
	}
	if first == 0 || len(gaps) != 49 {
		b.Fatalf("stream: first token after %v, %d gaps, err %v", first, len(gaps), sc.Err())
	}
	return first, gaps
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
