package main

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestDistNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := dist(ds)
	want := Dist{P50: 50, P90: 90, P99: 99, Max: 100}
	if got != want {
		t.Fatalf("dist = %+v, want %+v", got, want)
	}
	if got := dist(nil); got != (Dist{}) {
		t.Fatalf("dist(nil) = %+v", got)
	}
	if got := dist([]time.Duration{7 * time.Millisecond}); got.P50 != 7 || got.P99 != 7 {
		t.Fatalf("one sample: %+v", got)
	}
}

const role = `data: {"choices":[{"delta":{"role":"assistant","content":""}}]}` + "\n\n"

func tok(s string) string { return `data: {"choices":[{"delta":{"content":"` + s + `"}}]}` + "\n\n" }

func TestReadStream(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  string
		ok    bool
		cause string
		gaps  int
	}{
		{"complete", role + tok("tok0") + tok(" tok1") + tok(" tok2") + "data: [DONE]\n\n", true, "", 2},
		{"cut before DONE", role + tok("tok0") + tok(" tok1"), false, "stream_cut", 1},
		{"no tokens", role + "data: [DONE]\n\n", false, "no_tokens", 0},
		{"comments and events ignored", ": ping\n\nevent: x\n" + role + tok("a") + "data: [DONE]\n\n", true, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			firsts := 0
			s := readStream(strings.NewReader(tc.body), time.Now().Add(-time.Millisecond), func() { firsts++ })
			if s.ok != tc.ok || s.cause != tc.cause || len(s.gaps) != tc.gaps {
				t.Fatalf("got ok=%v cause=%q gaps=%d, want ok=%v cause=%q gaps=%d", s.ok, s.cause, len(s.gaps), tc.ok, tc.cause, tc.gaps)
			}
			if tc.ok && (s.ttft <= 0 || firsts != 1) {
				t.Fatalf("ttft %v, first-token callbacks %d", s.ttft, firsts)
			}
			// Reading stops at [DONE]; the blank line after it is not read.
			if want := int64(len(tc.body) - 1); tc.ok && s.bytes != want {
				t.Fatalf("bytes %d, want %d", s.bytes, want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "timeout"},
		{context.Canceled, "canceled"},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, "dial"},
		{io.ErrUnexpectedEOF, "eof"},
		{errors.New("remote error: tls: handshake failure"), "tls"},
		{errors.New("read: connection reset by peer"), "reset"},
		{errors.New("something else"), "other"},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestParseKV(t *testing.T) {
	m, err := parseKV("a=1,b=x=y")
	if err != nil || m["a"] != "1" || m["b"] != "x=y" {
		t.Fatalf("parseKV = %v, %v", m, err)
	}
	if _, err := parseKV("novalue"); err == nil {
		t.Fatal("parseKV accepted a label without '='")
	}
	if _, err := parsePids("edge=abc"); err == nil {
		t.Fatal("parsePids accepted a non-numeric pid")
	}
}
