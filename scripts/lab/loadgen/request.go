package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// sample is what one request measured.
type sample struct {
	ok    bool
	cause string        // error cause when !ok
	ttft  time.Duration // first token (stream) or first body byte (unary, bulk)
	total time.Duration
	gaps  []time.Duration // between consecutive token events (stream)
	bytes int64
	// For --trace: when the request started, when its response header
	// came (0: none), and the Server-Timing header Strait's edge sent.
	start  time.Time
	header time.Duration
	timing string
	id     string // X-Request-Id, to find the request in the edge's log
	// The client's own legs, from start (0: not on this request, e.g. a
	// kept-alive connection): TCP connected, TLS handshake done, request
	// written. They tell the edge's accept and handshake time from the path.
	connected, handshook, wrote time.Duration
	// For a body read whole (unary, bulk): when each whole MiB of it had
	// arrived, from start. It tells a stall from a slow steady rate.
	mib []time.Duration
}

// target describes what to request and how.
type target struct {
	url      string // base URL, e.g. https://127.0.0.1:9443
	key      string
	kind     string // stream, unary, bulk
	tokens   int
	interval time.Duration
	bulk     int // bytes of the bulk response (approximate)
	prompt   int // bytes added to the prompt (stream, unary)
	tlsConf  *tls.Config
	timeout  time.Duration
	onFirst  func() // called when a stream's first token arrives (nil: nothing)
	// drain reads a stream's body to its end after [DONE], where a client
	// stops (and so loses the connection unless the body's last chunk came
	// with the last event): a warm-up that opens connections keeps them.
	drain bool
}

// newTransport returns an HTTP/1.1 transport (as Python and Node SDK clients
// use by default: one request per connection at a time).
func (t *target) newTransport(keepalive bool, conns int) *http.Transport {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	return &http.Transport{
		Protocols:           p,
		TLSClientConfig:     t.tlsConf,
		DisableKeepAlives:   !keepalive,
		MaxIdleConnsPerHost: conns,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 30 * time.Second,
	}
}

func (t *target) newRequest(ctx context.Context) (*http.Request, error) {
	var path, body string
	switch t.kind {
	case "stream", "unary":
		path = "/v1/chat/completions"
		body = fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%v,"messages":[{"role":"user","content":"Say something.%s"}]}`,
			t.kind == "stream", strings.Repeat(" x", t.prompt/2))
	case "bulk":
		// base64 float32s: 4 bytes per dimension, 4/3 for base64.
		dims := t.bulk * 3 / 4 / 4
		path = "/v1/embeddings"
		body = fmt.Sprintf(`{"model":"text-embedding-3-small","input":"bulk","encoding_format":"base64","dimensions":%d}`, dims)
	default:
		return nil, fmt.Errorf("unknown kind %q", t.kind)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(t.url, "/")+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.key)
	req.Header.Set("X-Fake-Tokens", strconv.Itoa(t.tokens))
	req.Header.Set("X-Fake-Interval-Ms", strconv.Itoa(int(t.interval/time.Millisecond)))
	return req, nil
}

// do sends one request through client and measures it.
func (t *target) do(ctx context.Context, client *http.Client) (s sample) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	start := time.Now()
	defer func() { s.total, s.start = time.Since(start), start }()
	// The hooks run on the transport's goroutines, the write's possibly
	// after Do has returned.
	var legs [3]atomic.Int64
	defer func() {
		s.connected, s.handshook, s.wrote = time.Duration(legs[0].Load()), time.Duration(legs[1].Load()), time.Duration(legs[2].Load())
	}()
	mark := func(i int) { legs[i].Store(int64(time.Since(start))) }
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		ConnectDone:      func(string, string, error) { mark(0) },
		TLSHandshakeDone: func(tls.ConnectionState, error) { mark(1) },
		WroteRequest:     func(httptrace.WroteRequestInfo) { mark(2) },
	})
	req, err := t.newRequest(ctx)
	if err != nil {
		return sample{cause: "request"}
	}
	resp, err := client.Do(req)
	if err != nil {
		return sample{cause: classify(err)}
	}
	defer resp.Body.Close()
	header, timing, id := time.Since(start), resp.Header.Get("Server-Timing"), resp.Header.Get("X-Request-Id")
	defer func() { s.header, s.timing, s.id = header, timing, id }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return sample{cause: "http_" + strconv.Itoa(resp.StatusCode)}
	}
	if t.kind == "stream" {
		s := readStream(resp.Body, start, t.onFirst)
		if t.drain {
			_, _ = io.Copy(io.Discard, resp.Body)
		}
		return s
	}
	return readBody(resp.Body, start)
}

var (
	dataPrefix = []byte("data: ")
	doneLine   = []byte("data: [DONE]")
	content    = []byte(`"content":"`)
)

// readStream reads an OpenAI SSE stream. The first token is the first event
// with non-empty content (the fake's first chunk carries only the role).
func readStream(body io.Reader, start time.Time, onFirst func()) sample {
	s := sample{}
	br := bufio.NewReaderSize(body, 16<<10)
	var last time.Time
	for {
		line, err := br.ReadSlice('\n')
		s.bytes += int64(len(line))
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			s.cause = "stream_cut"
			if !errors.Is(err, io.EOF) {
				s.cause = classify(err)
			}
			return s
		}
		if !bytes.HasPrefix(line, dataPrefix) {
			continue
		}
		if bytes.HasPrefix(line, doneLine) {
			s.ok = s.ttft > 0
			if !s.ok {
				s.cause = "no_tokens"
			}
			return s
		}
		i := bytes.Index(line, content)
		if i < 0 || i+len(content) >= len(line) || line[i+len(content)] == '"' {
			continue
		}
		now := time.Now()
		if s.ttft == 0 {
			s.ttft = now.Sub(start)
			if onFirst != nil {
				onFirst()
			}
		} else {
			s.gaps = append(s.gaps, now.Sub(last))
		}
		last = now
	}
}

// readBody reads a whole response, noting when its first byte came.
func readBody(body io.Reader, start time.Time) sample {
	s := sample{}
	buf := make([]byte, 64<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 && s.ttft == 0 {
			s.ttft = time.Since(start)
		}
		if (s.bytes+int64(n))>>20 > s.bytes>>20 {
			s.mib = append(s.mib, time.Since(start))
		}
		s.bytes += int64(n)
		if errors.Is(err, io.EOF) {
			s.ok = true
			return s
		}
		if err != nil {
			s.cause = "body_" + classify(err)
			return s
		}
	}
}

// classify names the cause of a failed request.
func classify(err error) string {
	var (
		opErr   *net.OpError
		tlsErr  *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		timeout interface{ Timeout() bool }
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &timeout) && timeout.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &tlsErr), errors.As(err, &recErr), strings.Contains(err.Error(), "tls:"):
		return "tls"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "dial"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "eof"
	case strings.Contains(err.Error(), "connection reset"):
		return "reset"
	}
	return "other"
}
