// Package admin is the private HTTP listener both binaries share, off the
// public port: Prometheus metrics, liveness and readiness, and whatever
// operator endpoints a binary adds (the edge's usage report).
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is a Prometheus registry that also remembers the name of every
// metric its collectors declare, so a test can check that dashboards and
// alert rules only name metrics that exist (even those with no sample yet).
type Registry struct {
	*prometheus.Registry
	mu    sync.Mutex
	names map[string]bool
}

// NewRegistry returns a registry with the Go runtime and process collectors,
// ready for a binary's own metrics.
func NewRegistry() *Registry {
	reg := &Registry{Registry: prometheus.NewRegistry(), names: map[string]bool{}}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Register registers c and records the names it declares.
func (r *Registry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

// MustRegister registers cs and panics on error, like prometheus's.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// fqName reads the name out of Desc.String, the only place prometheus
// exposes it.
var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Names lists the metric names declared so far.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.names))
	for n := range r.names {
		out = append(out, n)
	}
	return out
}

// Config is what an admin listener serves.
type Config struct {
	// Metrics is served at /metrics; nil serves an empty registry.
	Metrics prometheus.Gatherer
	// Ready reports whether the binary can serve traffic (/readyz answers
	// 503 with the error otherwise); nil means always ready.
	Ready func(ctx context.Context) error
	// Routes are extra handlers by ServeMux pattern, e.g. "GET /usage".
	Routes map[string]http.Handler
	// Pprof serves net/http/pprof under /debug/pprof/ (off by default:
	// profiles show request paths and stacks, and a CPU profile costs CPU
	// while it runs) and turns on sampled block and mutex profiling.
	Pprof bool
}

// Sampling rates for the block and mutex profiles while pprof is served:
// about one event per 10 µs spent blocked and one contended mutex in 100,
// cheap enough to leave on in a process under load.
const (
	blockProfileRate     = 10_000
	mutexProfileFraction = 100
)

// Handler returns the admin mux. /healthz answers 200 while the process
// serves HTTP at all: liveness, for a supervisor that restarts hung
// processes; /readyz is readiness, for a load balancer.
func Handler(cfg Config) http.Handler {
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if cfg.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			if err := cfg.Ready(ctx); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	for pattern, h := range cfg.Routes {
		mux.Handle(pattern, h)
	}
	if cfg.Pprof {
		runtime.SetBlockProfileRate(blockProfileRate)
		runtime.SetMutexProfileFraction(mutexProfileFraction)
		mux.HandleFunc("GET /debug/pprof/", pprof.Index) // named profiles: heap, allocs, block, mutex, goroutine
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Serve serves h on ln until ctx ends, then closes the listener and waits
// for the server's goroutines. Admin requests are short; no drain.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	err := srv.Close()
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// Run starts Serve in the background and returns a func that stops it and
// waits; a nil listener starts nothing.
func Run(ln net.Listener, h http.Handler) (stop func()) {
	if ln == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = Serve(ctx, ln, h) }()
	return func() { cancel(); <-done }
}
