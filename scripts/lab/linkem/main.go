// Command linkem emulates a cross-border link in user space (this machine has
// no netem): it creates two network namespaces, "<ns>-dom" (domestic) and
// "<ns>-ovs" (overseas), gives each a TUN device addressed 10.77.0.1 and
// 10.77.0.2, and forwards every IP packet between them with one-way delay,
// jitter, random or bursty loss, and a rate limit with a bounded queue.
// Packets keep their order unless jitter is asked for. It deletes its
// namespaces on exit, also on SIGINT/SIGTERM.
//
//	linkem run --delay 75ms --loss 0.01 [--ctl 127.0.0.1:7099]   # until Ctrl-C
//	linkem set --ctl 127.0.0.1:7099 --delay 125ms --loss 0.03 --burst 4
//	linkem selftest                                               # needs root
//
// Processes are placed on either side with "ip netns exec <ns>-dom …".
// Needs root (CAP_NET_ADMIN) and the ip command.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmds := map[string]func([]string) error{
		"run": cmdRun, "set": cmdSet, "selftest": cmdSelftest, "echo": cmdEcho, "probe": cmdProbe,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		usage()
	}
	if err := cmd(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "linkem:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: linkem run|set|selftest|echo|probe [flags]  (-h for flags)")
	os.Exit(2)
}

// paramFlags registers the link parameters on fs.
func paramFlags(fs *flag.FlagSet) func() (Params, error) {
	delay := fs.Duration("delay", 0, "one-way delay (RTT is twice this)")
	jitter := fs.Duration("jitter", 0, "uniform jitter ± this around the delay; reorders packets")
	loss := fs.Float64("loss", 0, "fraction of packets lost in each direction, e.g. 0.01")
	burst := fs.Float64("burst", 0, "mean length of a loss run in packets (>1: Gilbert–Elliott bursts)")
	rate := fs.String("rate", "0", "rate limit in bit/s, with k/m/g suffix (e.g. 100m); 0 = none")
	queue := fs.Int("queue", 0, "rate limiter queue in bytes (0: 64 KiB)")
	return func() (Params, error) {
		r, err := parseRate(*rate)
		if err != nil {
			return Params{}, err
		}
		p := Params{Delay: *delay, Jitter: *jitter, Loss: *loss, Burst: *burst, Rate: r, Queue: *queue}
		return p, p.Validate()
	}
}

func parseRate(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSuffix(strings.ToLower(s), "bit"))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "m"):
		mult, s = 1e6, s[:len(s)-1]
	case strings.HasSuffix(s, "g"):
		mult, s = 1e9, s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad rate %q", s)
	}
	return int64(f * float64(mult)), nil
}

// emulator is a running link: the topology plus one direction each way.
type emulator struct {
	topo     topology
	out, in  *direction // domestic → overseas, overseas → domestic
	done     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// start builds the topology and starts forwarding with p in both directions.
func start(prefix string, p Params, seed uint64) (*emulator, error) {
	e := &emulator{topo: topology{prefix: prefix}, done: make(chan struct{})}
	if err := e.topo.up(); err != nil {
		return nil, err
	}
	e.out = newDirection("dom→ovs", e.topo.dom, e.topo.ovs, p, seed)
	e.in = newDirection("ovs→dom", e.topo.ovs, e.topo.dom, p, seed+1)
	for _, d := range []*direction{e.out, e.in} {
		e.wg.Add(2)
		go func() { defer e.wg.Done(); _ = d.read() }()
		go func() { defer e.wg.Done(); d.write(e.done) }()
	}
	return e, nil
}

func (e *emulator) setParams(p Params) {
	e.out.setParams(p)
	e.in.setParams(p)
}

// stop ends forwarding and deletes the namespaces.
func (e *emulator) stop() {
	e.stopOnce.Do(func() {
		close(e.done)
		e.topo.down() // closing the devices ends the readers
		e.wg.Wait()
	})
}

type statsReport struct {
	Params   Params   `json:"params"`
	Out      Stats    `json:"dom_to_ovs"`
	In       Stats    `json:"ovs_to_dom"`
	Overflow int64    `json:"overflow_drops"`
	LateOut  Lateness `json:"dom_to_ovs_late"`
	LateIn   Lateness `json:"ovs_to_dom_late"`
}

func (e *emulator) report() statsReport {
	so, oo, lo := e.out.stats()
	si, oi, li := e.in.stats()
	e.out.mu.Lock()
	p := e.out.link.Params()
	e.out.mu.Unlock()
	return statsReport{Params: p, Out: so, In: si, Overflow: oo + oi, LateOut: lo, LateIn: li}
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	params := paramFlags(fs)
	prefix := fs.String("ns", "lab", "namespace prefix: <ns>-dom and <ns>-ovs")
	ctl := fs.String("ctl", "127.0.0.1:7099", "control HTTP address (root namespace): GET/PUT /params, GET /stats")
	seed := fs.Uint64("seed", 1, "random seed of the loss and jitter models")
	_ = fs.Parse(args)
	p, err := params()
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer cancel()
	ln, err := net.Listen("tcp", *ctl)
	if err != nil {
		return err
	}
	e, err := start(*prefix, p, *seed)
	if err != nil {
		ln.Close()
		return err
	}
	defer e.stop()
	srv := &http.Server{Handler: e.control(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Printf("linkem: up: %s (%s) <-> %s (%s), control http://%s, params %s\n",
		e.topo.nsDom(), addrDomestic, e.topo.nsOvs(), addrOverseas, ln.Addr(), mustJSON(p))
	<-ctx.Done()
	fmt.Printf("linkem: stopping, stats %s\n", mustJSON(e.report()))
	return nil
}

// control serves the parameter and statistics endpoints.
func (e *emulator) control() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /params", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(e.report().Params)
	})
	mux.HandleFunc("PUT /params", func(w http.ResponseWriter, r *http.Request) {
		var p Params
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := p.Validate(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.setParams(p)
		_ = json.NewEncoder(w).Encode(p)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(e.report())
	})
	return mux
}

func cmdSet(args []string) error {
	fs := flag.NewFlagSet("set", flag.ExitOnError)
	params := paramFlags(fs)
	ctl := fs.String("ctl", "127.0.0.1:7099", "control address of the running linkem")
	_ = fs.Parse(args)
	p, err := params()
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+*ctl+"/params", bytes.NewReader(mustJSON(p)))
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return errors.New(strings.TrimSpace(string(body)))
	}
	fmt.Print(string(body))
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
