package main

import (
	"container/heap"
	"io"
	"sync"
	"time"
)

// maxInFlight bounds the packets held in one direction's delay line, so an
// absurd parameter cannot eat the machine's memory (at 250 ms and 1 Gbit/s a
// link holds ~21 000 full-size packets).
const maxInFlight = 1 << 16

// packet is one IP packet waiting for its departure time.
type packet struct {
	depart time.Time
	seq    uint64 // arrival order, breaks ties so equal times keep order
	data   []byte
}

type packetHeap []*packet

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if h[i].depart.Equal(h[j].depart) {
		return h[i].seq < h[j].seq
	}
	return h[i].depart.Before(h[j].depart)
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(*packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}

// direction forwards packets read from src to dst through a Link. One
// goroutine reads and admits (so arrival times never go backwards), another
// writes each packet at its departure time.
type direction struct {
	name     string
	src, dst io.ReadWriter

	mu       sync.Mutex
	link     *Link
	queue    packetHeap
	seq      uint64
	overflow int64         // packets dropped because maxInFlight was reached
	late     Lateness      // how far behind their departure times packets left
	wake     chan struct{} // signals the writer that the queue's head may have changed
	pool     sync.Pool
}

func newDirection(name string, src, dst io.ReadWriter, p Params, seed uint64) *direction {
	d := &direction{name: name, src: src, dst: dst, link: NewLink(p, seed), wake: make(chan struct{}, 1)}
	d.pool.New = func() any { b := make([]byte, 65536); return &b }
	return d
}

// read admits packets until src fails (it is closed on shutdown).
func (d *direction) read() error {
	for {
		bp := d.pool.Get().(*[]byte)
		n, err := d.src.Read(*bp)
		if err != nil {
			return err
		}
		now := time.Now()
		d.mu.Lock()
		depart, v := d.link.Admit(now, n)
		if v == Pass && len(d.queue) >= maxInFlight {
			d.overflow++
			v = QueueDrop
		}
		if v != Pass {
			d.mu.Unlock()
			d.pool.Put(bp)
			continue
		}
		d.seq++
		heap.Push(&d.queue, &packet{depart: depart, seq: d.seq, data: (*bp)[:n]})
		d.mu.Unlock()
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// write sends each packet at its departure time until done is closed.
func (d *direction) write(done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.mu.Lock()
		var next *packet
		if len(d.queue) > 0 {
			next = d.queue[0]
			if now := time.Now(); !next.depart.After(now) {
				heap.Pop(&d.queue)
				d.late.Observe(now.Sub(next.depart))
				d.mu.Unlock()
				_, _ = d.dst.Write(next.data) // a full or vanished device drops, like a wire would
				b := next.data[:cap(next.data)]
				d.pool.Put(&b)
				continue
			}
		}
		d.mu.Unlock()
		wait := time.Hour
		if next != nil {
			wait = time.Until(next.depart)
		}
		timer.Reset(wait)
		select {
		case <-done:
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

func (d *direction) setParams(p Params) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.link.SetParams(p)
}

func (d *direction) stats() (Stats, int64, Lateness) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.link.Stats(), d.overflow, d.late
}

// Lateness counts packets the writer sent after their departure time. On a
// busy host the emulator's own scheduling adds delay the link model never
// asked for; a congestion controller reads it as queueing (quic-go's hybrid
// slow start leaves slow start at 16 ms above the minimum RTT), so a run
// whose packets left late measured the host, not the link. (Delay before the
// reader timestamps a packet is not seen here.)
type Lateness struct {
	Over1ms  int64   `json:"over_1ms"`
	Over10ms int64   `json:"over_10ms"`
	MaxMs    float64 `json:"max_ms"`
}

// Observe records one packet that left late by d (zero or more).
func (l *Lateness) Observe(d time.Duration) {
	if d > time.Millisecond {
		l.Over1ms++
	}
	if d > 10*time.Millisecond {
		l.Over10ms++
	}
	if ms := float64(d) / float64(time.Millisecond); ms > l.MaxMs {
		l.MaxMs = ms
	}
}
