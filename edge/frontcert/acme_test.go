package frontcert_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/edge/frontcert"
)

// domain is the front's public name; the test's DNS server answers
// 127.0.0.1 for it (pebble validates against it; autocert refuses
// single-label names such as localhost).
const domain = "edge.strait.test"

// TestACMEWithPebble: the front obtains its certificate from a local ACME
// server (letsencrypt's pebble, a Go tool dependency), which validates the
// TLS-ALPN-01 challenge by connecting to the front listener itself; then a
// client that trusts pebble's root completes a handshake for the domain.
func TestACMEWithPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs pebble")
	}
	dir := t.TempDir()
	// The front's port first: pebble validates TLS-ALPN-01 there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pebble := startPebble(t, dir, ln.Addr().(*net.TCPAddr).Port, closedPort(t), serveDNS(t))
	m, err := frontcert.New(frontcert.Config{Domains: []string{domain}, CacheDir: filepath.Join(dir, "cache"),
		DirectoryURL: pebble.directory, DirectoryCAs: pebble.apiCA})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "front") })}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(tls.NewListener(ln, m.TLSConfig())) }()
	defer func() { srv.Close(); <-served }()

	cert, err := m.Warm(domain)
	if err != nil {
		t.Fatalf("certificate from pebble: %v", err)
	}
	if cert.Leaf == nil || len(cert.Leaf.DNSNames) != 1 || cert.Leaf.DNSNames[0] != domain {
		t.Fatalf("certificate names: %v", cert.Leaf)
	}
	roots := pebble.roots(t)
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: domain, RootCAs: roots})
	if err != nil {
		t.Fatalf("handshake with the ACME certificate: %v", err)
	}
	t.Logf("front serves %q issued by %q until %s", conn.ConnectionState().PeerCertificates[0].Subject.CommonName,
		conn.ConnectionState().PeerCertificates[0].Issuer.CommonName, conn.ConnectionState().PeerCertificates[0].NotAfter)
	conn.Close()
	if _, err := os.Stat(filepath.Join(dir, "cache", domain)); err != nil {
		t.Errorf("certificate not cached: %v", err)
	}
}

type pebbleServer struct {
	directory, management string
	apiCA                 *x509.CertPool
}

// roots fetches pebble's issuing root from its management API.
func (p *pebbleServer) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.apiCA}}}
	resp, err := c.Get(p.management + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	pem, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("pebble root: %s", pem)
	}
	return pool
}

// startPebble builds pebble (the module's tool dependency) and runs it
// with its HTTPS API on loopback, validating TLS-ALPN-01 on tlsPort and
// HTTP-01 on httpPort, and resolving names with the DNS server at dns.
func startPebble(t *testing.T, dir string, tlsPort, httpPort int, dns string) *pebbleServer {
	t.Helper()
	bin := filepath.Join(dir, "pebble")
	build := exec.Command("go", "build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build pebble: %v\n%s", err, out)
	}
	ca, err := certs.NewCA(certs.ECDSAP256, "pebble API test CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssuePEM(certs.LeafOptions{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	api, mgmt := freePort(t), freePort(t)
	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": api, "managementListenAddress": mgmt,
		"certificate": write("pebble.pem", certPEM), "privateKey": write("pebble-key.pem", keyPEM),
		"httpPort": httpPort, "tlsPort": tlsPort, "ocspResponderURL": "", "externalAccountBindingRequired": false,
		"keyAlgorithm": "ecdsa",
	}})
	cmd := exec.Command(bin, "-config", write("pebble.json", cfg), "-dnsserver", dns)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if testing.Verbose() {
				fmt.Fprintln(os.Stderr, sc.Text())
			}
			if strings.Contains(sc.Text(), "ACME directory available") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("pebble did not start")
	}
	p := &pebbleServer{directory: "https://" + api + "/dir", management: "https://" + mgmt, apiCA: ca.Pool()}
	// Pebble prints its addresses before it binds them.
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.apiCA}}}
	for i := 0; ; i++ {
		resp, err := c.Get(p.directory)
		if err == nil {
			resp.Body.Close()
			return p
		}
		if i == 100 {
			t.Fatalf("pebble's directory: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestACMEHTTP01: with the TLS port unreachable, the certificate comes
// through HTTP-01, answered by HTTPHandler on the port pebble checks.
func TestACMEHTTP01(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs pebble")
	}
	dir := t.TempDir()
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pebble := startPebble(t, dir, closedPort(t), httpLn.Addr().(*net.TCPAddr).Port, serveDNS(t))
	m, err := frontcert.New(frontcert.Config{Domains: []string{domain}, CacheDir: filepath.Join(dir, "cache"),
		DirectoryURL: pebble.directory, DirectoryCAs: pebble.apiCA})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: m.HTTPHandler()}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(httpLn) }()
	defer func() { srv.Close(); <-served }()
	cert, err := m.Warm(domain)
	if err != nil {
		t.Fatalf("certificate by HTTP-01: %v", err)
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: domain, Roots: pebble.roots(t),
		Intermediates: intermediates(cert)}); err != nil {
		t.Fatalf("certificate from HTTP-01 does not verify: %v", err)
	}
}

func intermediates(c *tls.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			pool.AddCert(ic)
		}
	}
	return pool
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(freePort(t))
	n, _ := strconv.Atoi(port)
	return n
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveDNS answers every A question with 127.0.0.1 and every other
// question with no records, over UDP and TCP (pebble's resolver uses TCP)
// on one loopback port, until the test ends.
func serveDNS(t *testing.T) string {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: tcp.Addr().(*net.TCPAddr).Port})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { tcp.Close(); udp.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := udp.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if b := answerDNS(buf[:n]); b != nil {
				_, _ = udp.WriteToUDP(b, from)
			}
		}
	})
	wg.Go(func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				for {
					var n uint16
					if binary.Read(c, binary.BigEndian, &n) != nil {
						return
					}
					q := make([]byte, n)
					if _, err := io.ReadFull(c, q); err != nil {
						return
					}
					b := answerDNS(q)
					if b == nil || binary.Write(c, binary.BigEndian, uint16(len(b))) != nil {
						return
					}
					if _, err := c.Write(b); err != nil {
						return
					}
				}
			})
		}
	})
	return tcp.Addr().String()
}

// answerDNS answers one query: A 127.0.0.1 for any name, nothing else.
func answerDNS(query []byte) []byte {
	var msg dnsmessage.Message
	if msg.Unpack(query) != nil || len(msg.Questions) == 0 {
		return nil
	}
	msg.Header.Response, msg.Header.Authoritative = true, true
	q := msg.Questions[0]
	msg.Answers, msg.Additionals = nil, nil
	if q.Type == dnsmessage.TypeA {
		msg.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA,
			Class: dnsmessage.ClassINET, TTL: 60}, Body: &dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}}}}
	}
	b, err := msg.Pack()
	if err != nil {
		return nil
	}
	return b
}
