package edge

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

// stubAnswer is what the stub relay answers every request with: an OpenAI
// chat completion that reports its usage.
const stubAnswer = `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}`

// stubRelay is the relay end of real WebSocket tunnel sessions on
// loopback: it answers probes, and every request stream with stubAnswer,
// or with what answer makes of the request body when it is set.
type stubRelay struct {
	ln     tunnel.Listener
	dialer tunnel.Dialer
	cancel context.CancelFunc
	wg     sync.WaitGroup
	answer func(body []byte) []byte // set before the first request
	// script, when set (before the first request), writes each answer
	// instead: its header, body pieces with pauses between, its End.
	script func(w *proto.Writer)
}

func startStubRelay(t *testing.T) *stubRelay {
	t.Helper()
	pki := tunneltest.NewPKI(t, "")
	cfg := wstun.Config{HandshakeTimeout: 5 * time.Second}
	ln, err := wstun.Listen(tunneltest.Listen(t), pki.ServerConfig(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := wstun.NewDialer(ln.Addr().String(), pki.ClientConfig(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &stubRelay{ln: ln, dialer: d, cancel: cancel}
	r.wg.Go(func() {
		for {
			s, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			r.wg.Go(func() { r.serve(ctx, s) })
		}
	})
	t.Cleanup(r.stop)
	return r
}

func (r *stubRelay) stop() {
	r.cancel()
	r.ln.Close()
	r.wg.Wait()
}

func (r *stubRelay) serve(ctx context.Context, s tunnel.Session) {
	defer s.Close()
	for {
		st, err := s.AcceptStream(ctx)
		if err != nil {
			return
		}
		r.wg.Go(func() {
			defer st.Close()
			rd := proto.NewReader(bufio.NewReader(st))
			defer rd.Release()
			w := proto.NewWriter(st)
			var body []byte
			for {
				typ, p, err := rd.Next()
				if err != nil {
					return
				}
				switch typ {
				case proto.FrameData:
					body = append(body, p...)
				case proto.FramePing:
					seq, _ := proto.ParseSeq(p)
					if w.WritePong(seq) != nil {
						return
					}
				case proto.FrameEnd: // the request body is complete
					_ = w.WriteDispatched()
					if r.script != nil {
						r.script(w)
						return
					}
					_ = w.WriteResponse(&proto.ResponseHeader{Status: http.StatusOK,
						Header: http.Header{"Content-Type": {"application/json"}}})
					answer := []byte(stubAnswer)
					if r.answer != nil {
						answer = r.answer(body)
					}
					_, _ = w.Write(answer)
					_ = w.WriteEnd(proto.End{})
					return
				}
			}
		})
	}
}

// edgeRig is an Edge connected to a stub relay, serving plain HTTP on a
// loopback port, with its metrics and logs recorded.
type edgeRig struct {
	t       *testing.T
	e       *Edge
	url     string
	metrics *prometheus.Registry
	logs    *observer.ObservedLogs
}

// newEdgeRig builds the edge from cfg; Keys, Relays, Logger and Metrics
// are the rig's.
func newEdgeRig(t *testing.T, cfg Config, keys ...auth.Entry) *edgeRig {
	t.Helper()
	return newEdgeRigTo(t, startStubRelay(t), cfg, keys...)
}

// newEdgeRigTo is newEdgeRig with the relay given.
func newEdgeRigTo(t *testing.T, relay *stubRelay, cfg Config, keys ...auth.Entry) *edgeRig {
	t.Helper()
	k, err := auth.NewKeySet(keys)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	r := &edgeRig{t: t, metrics: prometheus.NewRegistry(), logs: logs}
	cfg.Keys, cfg.Relays, cfg.Logger, cfg.Metrics = k, []tunnel.Dialer{relay.dialer}, zap.New(core), r.metrics
	if cfg.SessionsPerRelay == 0 {
		cfg.SessionsPerRelay = 1
	}
	if r.e, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.e.Close() }) // before the relay stops: cleanups run last first
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.e.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.e.Handler())
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// entry is a client key for newEdgeRig: the secret is "key-of-" + name.
func entry(name string, c auth.Client) auth.Entry {
	c.Name = name
	return auth.Entry{Digest: auth.DigestOf("key-of-" + name), Client: c}
}

// reply is a response as the client saw it.
type reply struct {
	status int
	header http.Header
	body   string
}

// post sends body to path with the key as the family's SDK would send it
// (Bearer for OpenAI, x-api-key for Anthropic).
func (r *edgeRig) post(path, key, contentType, body string) reply {
	r.t.Helper()
	got, err := r.tryPost(path, key, contentType, body)
	if err != nil {
		r.t.Fatal(err)
	}
	return got
}

// tryPost is post for goroutines other than the test's: it returns its
// error.
func (r *edgeRig) tryPost(path, key, contentType, body string) (reply, error) {
	req, err := http.NewRequest(http.MethodPost, r.url+path, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		if strings.HasPrefix(path, "/v1/messages") {
			req.Header.Set("X-Api-Key", key)
		} else {
			req.Header.Set("Authorization", "Bearer "+key)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{resp.StatusCode, resp.Header, string(b)}, nil
}

// counter is the value of the counter name with exactly these labels,
// or 0.
func (r *edgeRig) counter(name string, labels map[string]string) float64 {
	r.t.Helper()
	mfs, err := r.metrics.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			n := 0
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok {
					if v != l.GetValue() {
						continue metrics
					}
					n++
				}
			}
			if n == len(labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

const (
	chatPath     = "/v1/chat/completions"
	messagesPath = "/v1/messages"
	jsonType     = "application/json"
	chatBody     = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	messagesBody = `{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
)
