package e2e

import (
	"net"
	"sync"
	"testing"
)

// cutProxy forwards TCP connections to a target and can cut them all at
// once with a reset, the way a dead VPS or a cut cable looks to the edge.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	holds []*hold // one per connection accepted, in order: edge → relay
	backs []*hold // the same connections' relay → edge direction
	wg    sync.WaitGroup
}

// hold stalls one direction of a connection while set: what is sent that
// way waits in the proxy, as behind a lost segment, and the connection
// stays up.
type hold struct {
	mu sync.Mutex
	ch chan struct{} // closed on release; nil when not held
}

func (h *hold) wait() {
	h.mu.Lock()
	ch := h.ch
	h.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func newCutProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.track(c, up)
		h, back := &hold{}, &hold{}
		p.mu.Lock()
		p.holds = append(p.holds, h)
		p.backs = append(p.backs, back)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, c, h)
		go p.pipe(c, up, back)
	}
}

func (p *cutProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *cutProxy) pipe(dst, src net.Conn, h *hold) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		h.wait()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// stall holds the edge → relay direction of the i-th connection accepted
// (counting from 0) until the returned release is called; release runs at
// cleanup too, so no pipe stays blocked.
func (p *cutProxy) stall(t testing.TB, i int) (release func()) {
	t.Helper()
	return p.hold(t, &p.holds, i)
}

// stallAnswers holds the relay → edge direction of the i-th connection, as
// stall does the other.
func (p *cutProxy) stallAnswers(t testing.TB, i int) (release func()) {
	t.Helper()
	return p.hold(t, &p.backs, i)
}

func (p *cutProxy) hold(t testing.TB, holds *[]*hold, i int) (release func()) {
	t.Helper()
	p.mu.Lock()
	if i >= len(*holds) {
		p.mu.Unlock()
		t.Fatalf("stall: %d connections through the proxy, want connection %d", len(*holds), i)
	}
	h := (*holds)[i]
	p.mu.Unlock()
	ch := make(chan struct{})
	h.mu.Lock()
	h.ch = ch
	h.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			h.mu.Lock()
			h.ch = nil
			h.mu.Unlock()
			close(ch)
		})
	}
	t.Cleanup(release)
	return release
}

// cut resets every connection currently open through the proxy.
func (p *cutProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST instead of FIN
		}
		c.Close()
		delete(p.conns, c)
	}
	return n
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.cut()
	p.wg.Wait()
}
