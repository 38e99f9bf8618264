// Command fakesrv serves scripts/fakeprovider for the border lab on plain HTTP
// (what the relay and the overseas nginx call) and, optionally, on HTTPS (the
// "direct" contender: a client calling the provider across the border itself).
// Both listeners share one fake, so every contender meets the same provider.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/strait/strait/scripts/fakeprovider"
)

func main() {
	plain := flag.String("plain", "127.0.0.1:9900", "plain HTTP address (HTTP/1.1 and h2c)")
	tlsAddr := flag.String("tls", "", "HTTPS address (empty: none)")
	cert := flag.String("cert", "", "certificate PEM for -tls")
	key := flag.String("key", "", "key PEM for -tls")
	tokens := flag.Int("tokens", 200, "tokens per completion (X-Fake-Tokens overrides)")
	interval := flag.Duration("interval", 20*time.Millisecond, "gap between tokens (X-Fake-Interval-Ms overrides)")
	noGzip := flag.Bool("no-gzip", false, "never compress (default: gzip when offered, as the real APIs do)")
	flag.Parse()
	cfg := fakeprovider.Config{Tokens: *tokens, Interval: *interval, NoCompression: *noGzip}
	if err := run(*plain, *tlsAddr, *cert, *key, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "fakesrv:", err)
		os.Exit(1)
	}
}

func run(plain, tlsAddr, cert, key string, cfg fakeprovider.Config) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler: forgetful{fakeprovider.New(cfg)}, Protocols: protocols, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 2)
	ln, err := net.Listen("tcp", plain)
	if err != nil {
		return err
	}
	go func() { errc <- srv.Serve(ln) }()
	if tlsAddr != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return err
		}
		tln, err := net.Listen("tcp", tlsAddr)
		if err != nil {
			return err
		}
		go func() {
			errc <- srv.Serve(tls.NewListener(tln, &tls.Config{Certificates: []tls.Certificate{c}, NextProtos: []string{"h2", "http/1.1"}}))
		}()
	}
	fmt.Printf("fakesrv: plain http://%s tls %q, %d tokens every %v\n", ln.Addr(), tlsAddr, cfg.Tokens, cfg.Interval)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	_ = srv.Close()
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// forgetful drops the fake's request log after every request: a load test
// sends hundreds of thousands of requests, and the log exists for tests.
type forgetful struct{ s *fakeprovider.Server }

func (f forgetful) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer f.s.Reset()
	f.s.ServeHTTP(w, r)
}
