package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Dist is a latency distribution in milliseconds.
type Dist struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Result is one run, written as one JSON line.
type Result struct {
	Time        string            `json:"time"`
	Label       map[string]string `json:"label"`
	URL         string            `json:"url"`
	Mode        string            `json:"mode"`
	Kind        string            `json:"kind"`
	Concurrency int               `json:"concurrency"`
	Rate        float64           `json:"rate,omitempty"` // offered req/s (open loop)
	Tokens      int               `json:"tokens,omitempty"`
	IntervalMs  int               `json:"interval_ms,omitempty"`
	Attempted   int               `json:"attempted"`
	OK          int               `json:"ok"`
	Errors      map[string]int    `json:"errors,omitempty"`
	TTFT        Dist              `json:"ttft_ms"`
	Total       Dist              `json:"total_ms"`
	Gap         *Dist             `json:"gap_ms,omitempty"`
	RPS         float64           `json:"rps"`
	WallS       float64           `json:"wall_s"`
	MBps        float64           `json:"mbps,omitempty"` // response bytes per second, MB/s (bulk)
	Bytes       int64             `json:"bytes"`
	RSS         map[string]RSS    `json:"rss_kib,omitempty"`
	LoadAvg     string            `json:"loadavg"`
}

// RSS is a process's resident memory before the run and with every stream
// open, in KiB.
type RSS struct {
	Before    int64   `json:"before"`
	Active    int64   `json:"active"`
	PerStream float64 `json:"per_stream"`
}

type runConfig struct {
	target
	mode        string
	concurrency int
	requests    int
	duration    time.Duration
	rate        float64
	warmup      int
	label       map[string]string
	out         string
	rssPids     map[string]int
	rssSettle   time.Duration
	ramp        time.Duration
	trace       string
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	c := runConfig{}
	fs.StringVar(&c.url, "url", "https://127.0.0.1:9443", "base URL")
	caFile := fs.String("ca", "", "CA PEM to trust (empty: system roots)")
	fs.StringVar(&c.key, "key", os.Getenv("STRAIT_CLIENT_KEY"), "API key sent as Authorization: Bearer")
	fs.StringVar(&c.kind, "kind", "stream", "stream, unary or bulk")
	fs.IntVar(&c.tokens, "tokens", 200, "tokens per completion (X-Fake-Tokens)")
	fs.DurationVar(&c.interval, "interval", 20*time.Millisecond, "gap between tokens (X-Fake-Interval-Ms)")
	fs.IntVar(&c.bulk, "bulk-bytes", 10<<20, "size of the bulk response")
	fs.IntVar(&c.prompt, "prompt-bytes", 0, "stream and unary: pad the prompt with this many bytes (a long conversation's request)")
	fs.DurationVar(&c.timeout, "timeout", 50*time.Second, "per-request timeout")
	fs.StringVar(&c.mode, "mode", "fresh", "fresh (new TCP+TLS connection per request) or keepalive")
	fs.IntVar(&c.concurrency, "concurrency", 1, "requests in flight at most")
	fs.IntVar(&c.requests, "requests", 0, "requests to send (0: concurrency)")
	fs.DurationVar(&c.duration, "duration", 50*time.Second, "stop starting requests after this; in-flight ones get --timeout")
	fs.Float64Var(&c.rate, "rate", 0, "open loop: start this many requests per second (0: closed loop)")
	fs.DurationVar(&c.ramp, "ramp", 0, "closed loop: spread the workers' first requests evenly over this long")
	fs.IntVar(&c.warmup, "warmup", 1, "unmeasured requests before the run (and, in keepalive mode, one per connection)")
	labels := fs.String("label", "", "k=v,k=v recorded with the result")
	fs.StringVar(&c.out, "out", "", "append the JSON line to this file")
	fs.StringVar(&c.trace, "trace", "", "append one JSON line per measured request to this file (start, header, TTFT, Server-Timing)")
	failOnError := fs.Bool("fail-on-error", false, "exit with status 1 if any request failed")
	rss := fs.String("rss", "", "name=pid,… : report resident memory of these processes with every stream open")
	fs.DurationVar(&c.rssSettle, "rss-settle", 3*time.Second, "wait this long after the last first token before sampling RSS")
	_ = fs.Parse(args)

	if c.requests == 0 {
		c.requests = c.concurrency
	}
	if c.mode != "fresh" && c.mode != "keepalive" {
		return fmt.Errorf("mode %q: want fresh or keepalive", c.mode)
	}
	var err error
	if c.label, err = parseKV(*labels); err != nil {
		return err
	}
	if c.rssPids, err = parsePids(*rss); err != nil {
		return err
	}
	c.tlsConf = &tls.Config{ClientSessionCache: nil}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no certificates", *caFile)
		}
		c.tlsConf.RootCAs = pool
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	res, err := c.run(ctx)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(res)
	if c.out != "" {
		f, err := os.OpenFile(c.out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(append(line, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	printTable(os.Stdout, []Result{res}, false)
	if *failOnError && (res.OK < res.Attempted || res.OK == 0) {
		return fmt.Errorf("%d of %d requests failed: %v", res.Attempted-res.OK, res.Attempted, res.Errors)
	}
	return nil
}

// run warms up, then sends the requests and summarizes them.
func (c *runConfig) run(ctx context.Context) (Result, error) {
	shared := c.newTransport(true, c.concurrency)
	defer shared.CloseIdleConnections()
	// Warm-up: make sure the path is up (a tunnel connected, a pool filled
	// with one connection) with short unary requests that are not measured.
	warm := c.target
	warm.kind, warm.tokens, warm.interval = "unary", 1, 0
	for range c.warmup {
		client := &http.Client{Transport: c.newTransport(false, 1)}
		if s := warm.do(ctx, client); !s.ok {
			return Result{}, fmt.Errorf("warm-up request failed: %s", s.cause)
		}
	}

	if c.rate > 0 && c.mode == "keepalive" && c.warmup > 0 {
		if err := c.openConns(ctx, shared); err != nil {
			return Result{}, err
		}
	}

	var firsts atomic.Int64
	allFirst := make(chan struct{})
	var before map[string]int64
	if len(c.rssPids) > 0 {
		before = sampleRSS(c.rssPids)
	}

	var (
		mu      sync.Mutex
		samples []sample
		started atomic.Int64
		once    sync.Once
	)
	runCtx, stop := context.WithTimeout(ctx, c.duration)
	defer stop()
	t := c.target
	// First tokens are counted as they arrive, so a memory run can sample
	// while every stream is open.
	t.onFirst = func() {
		if firsts.Add(1) >= int64(c.concurrency) {
			once.Do(func() { close(allFirst) })
		}
	}
	one := func(client *http.Client) {
		s := t.do(ctx, client)
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
	}
	client := func() (*http.Client, func()) {
		if c.mode == "keepalive" {
			return &http.Client{Transport: shared}, func() {}
		}
		tr := c.newTransport(false, 1)
		return &http.Client{Transport: tr}, tr.CloseIdleConnections
	}

	start := time.Now()
	var wg sync.WaitGroup
	if c.rate > 0 {
		sem := make(chan struct{}, c.concurrency)
		gap := time.Duration(float64(time.Second) / c.rate)
		for i := 0; i < c.requests && runCtx.Err() == nil; i++ {
			if d := time.Until(start.Add(time.Duration(i) * gap)); d > 0 {
				select {
				case <-time.After(d):
				case <-runCtx.Done():
				}
			}
			select {
			case sem <- struct{}{}:
			case <-runCtx.Done():
				continue
			}
			started.Add(1)
			wg.Go(func() {
				defer func() { <-sem }()
				cl, done := client()
				defer done()
				one(cl)
			})
		}
	} else {
		var next atomic.Int64
		for i := range c.concurrency {
			wg.Go(func() {
				if c.ramp > 0 {
					select {
					case <-time.After(c.ramp * time.Duration(i) / time.Duration(c.concurrency)):
					case <-runCtx.Done():
						return
					}
				}
				if c.mode == "keepalive" && c.warmup > 0 {
					// One unmeasured request opens this worker's connection.
					_ = warm.do(runCtx, &http.Client{Transport: shared})
				}
				for runCtx.Err() == nil && next.Add(1) <= int64(c.requests) {
					started.Add(1)
					cl, done := client()
					one(cl)
					done()
				}
			})
		}
	}

	var after map[string]int64
	if len(c.rssPids) > 0 {
		select {
		case <-allFirst:
		case <-runCtx.Done():
		}
		time.Sleep(c.rssSettle)
		after = sampleRSS(c.rssPids)
	}
	wg.Wait()
	wall := time.Since(start)
	if c.trace != "" {
		if err := writeTrace(c.trace, c.label, start, samples); err != nil {
			return Result{}, err
		}
	}
	res := c.summarize(samples, wall)
	res.Attempted = int(started.Load())
	if before != nil {
		res.RSS = map[string]RSS{}
		for name := range c.rssPids {
			r := RSS{Before: before[name], Active: after[name]}
			r.PerStream = float64(r.Active-r.Before) / float64(c.concurrency)
			res.RSS[name] = r
		}
	}
	return res, nil
}

func (c *runConfig) summarize(samples []sample, wall time.Duration) Result {
	res := Result{
		Time: time.Now().UTC().Format(time.RFC3339), Label: c.label, URL: c.url, Mode: c.mode, Kind: c.kind,
		Concurrency: c.concurrency, Rate: c.rate, Errors: map[string]int{}, WallS: wall.Seconds(),
		LoadAvg: loadAvg(),
	}
	if c.kind == "stream" {
		res.Tokens, res.IntervalMs = c.tokens, int(c.interval/time.Millisecond)
	}
	var ttft, total, gaps []time.Duration
	var lastEnd time.Duration
	for _, s := range samples {
		res.Bytes += s.bytes
		if !s.ok {
			res.Errors[s.cause]++
			continue
		}
		res.OK++
		ttft = append(ttft, s.ttft)
		total = append(total, s.total)
		gaps = append(gaps, s.gaps...)
		lastEnd = max(lastEnd, s.total)
	}
	res.TTFT, res.Total = dist(ttft), dist(total)
	if len(gaps) > 0 {
		g := dist(gaps)
		res.Gap = &g
	}
	res.RPS = float64(res.OK) / wall.Seconds()
	res.MBps = float64(res.Bytes) / 1e6 / wall.Seconds()
	return res
}

// dist returns nearest-rank percentiles of ds (sorted in place).
func dist(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.999999) - 1
		return msf(ds[min(max(i, 0), len(ds)-1)])
	}
	return Dist{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: msf(ds[len(ds)-1])}
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// sampleRSS reads VmRSS (KiB) of each process.
func sampleRSS(pids map[string]int) map[string]int64 {
	out := map[string]int64{}
	for name, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					out[name], _ = strconv.ParseInt(f[0], 10, 64)
				}
			}
		}
	}
	return out
}

func parseKV(s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("label %q: want k=v", kv)
		}
		m[k] = v
	}
	return m, nil
}

func parsePids(s string) (map[string]int, error) {
	kv, err := parseKV(s)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for k, v := range kv {
		pid, err := strconv.Atoi(v)
		if err != nil {
			return nil, errors.New("rss: " + err.Error())
		}
		out[k] = pid
	}
	return out, nil
}

// openConns opens the shared pool's connections before an open-loop
// keepalive run, as the closed loop's workers each open theirs with an
// unmeasured request: otherwise the run's first requests each dial, and
// their TLS handshakes (hundreds at once on shared cores) are what its p99
// measures, not the path. Each of c.concurrency concurrent streams holds
// its connection for about 100 ms, so all of them dial; a second later,
// with the handshakes done, the run starts.
func (c *runConfig) openConns(ctx context.Context, shared *http.Transport) error {
	hold := c.target
	hold.kind, hold.tokens, hold.interval, hold.onFirst, hold.drain = "stream", 3, 50*time.Millisecond, nil, true
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range c.concurrency {
		wg.Go(func() {
			if s := hold.do(ctx, &http.Client{Transport: shared}); !s.ok {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("opening connections: %d of %d warm-up requests failed", n, c.concurrency)
	}
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
