package e2e

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/cmd/internal/edgecmd"
)

// TestSlowBodyCannotHoldConnections sends request bodies the way a hostile
// tenant would, over real TLS connections: a client without a key that
// trickles its body gets its 401 at once and a closed connection, and a
// keyed client that stalls or trickles is cut at the body deadlines.
func TestSlowBodyCannotHoldConnections(t *testing.T) {
	const idle, total = 800 * time.Millisecond, 1600 * time.Millisecond
	s := newStack(t, stackOptions{edgeEdit: func(f *edgecmd.File) {
		f.BodyIdleTimeout, f.BodyTimeout = idle, total
	}})
	cases := []struct {
		name    string
		key     string
		trickle bool // one byte every 50ms, for ever; else stop after the first
		status  int
		// the answer comes within [from, to] of the headers
		from, to time.Duration
	}{
		{"no key, trickling", "", true, http.StatusUnauthorized, 0, idle / 2},
		{"wrong key, trickling", "not-a-key", true, http.StatusUnauthorized, 0, idle / 2},
		{"keyed, stalled mid-body", clientKey, false, http.StatusRequestTimeout, idle * 3 / 4, idle + time.Second},
		{"keyed, trickling", clientKey, true, http.StatusRequestTimeout, total * 3 / 4, total + time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := s.dialHTTP1(t)
			_ = c.SetDeadline(time.Now().Add(total + 5*time.Second))
			head := "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"
			if tc.key != "" {
				head += "Authorization: Bearer " + tc.key + "\r\n"
			}
			if _, err := io.WriteString(c, head+"\r\n{"); err != nil {
				t.Fatal(err)
			}
			sent := time.Now()
			stop := make(chan struct{})
			defer close(stop)
			if tc.trickle {
				go func() {
					tick := time.NewTicker(50 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
							if _, err := io.WriteString(c, " "); err != nil {
								return
							}
						}
					}
				}()
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer after %v: %v", time.Since(sent), err)
			}
			took := time.Since(sent)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || took < tc.from || took > tc.to {
				t.Fatalf("answered %d after %v; want %d within [%v, %v]: %s", resp.StatusCode, took, tc.status, tc.from, tc.to, body)
			}
			if !strings.Contains(string(body), `"error"`) {
				t.Errorf("answer is not in OpenAI's error format: %s", body)
			}
			// The connection must end, even though the client keeps sending.
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			if n, err := br.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				t.Errorf("connection still open after the answer (read %d bytes, %v)", n, err)
			}
		})
	}
}

// dialHTTP1 opens a raw HTTP/1.1 TLS connection to the edge, for tests
// that behave as no well-mannered client does.
func (s *stack) dialHTTP1(t *testing.T) *tls.Conn { return s.dialHTTP1With(t, &net.Dialer{}) }

// dialHTTP1With is dialHTTP1 through d.
func (s *stack) dialHTTP1With(t *testing.T, d *net.Dialer) *tls.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(d, "tcp", strings.TrimPrefix(s.edgeURL, "https://"),
		&tls.Config{RootCAs: frontRoots(t, s.dir), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func isTimeout(err error) bool {
	ne, ok := err.(interface{ Timeout() bool })
	return ok && ne.Timeout()
}
