package enrol

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/certs/enrol"
)

// Target is a relay to renew through: its TLS address and the edge's
// tunnel config for it (certificate, pinned CA, server name).
type Target struct {
	Addr string
	TLS  *tls.Config
}

// Renewer renews the edge's tunnel certificate through a relay before it
// expires, and swaps it into the running edge (KeyPair.Reload): sessions
// already up keep going, the next handshake uses the new certificate.
type Renewer struct {
	// CertFile and KeyFile are the files KeyPair loads from. A renewal in
	// progress keeps its new key beside KeyFile, in KeyFile+".next".
	CertFile, KeyFile string
	KeyPair           *certs.KeyPair
	Relays            []Target
	// Remaining is the share of the certificate's lifetime left when it
	// is renewed; zero means a third.
	Remaining float64
	// Every is how often the certificate is looked at (and a failed
	// renewal retried); zero means an hour.
	Every time.Duration
	Log   *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Due reports whether the current certificate should be renewed.
func (r *Renewer) Due() bool {
	c := r.KeyPair.Certificate()
	if c == nil || c.Leaf == nil {
		return false
	}
	life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
	rem := r.Remaining
	if rem <= 0 {
		rem = 1.0 / 3
	}
	return c.Leaf.NotAfter.Sub(r.now()) < time.Duration(float64(life)*rem)
}

// Renew gets a certificate for a new key from the first relay that gives
// one, writes both files and reloads the key pair. Until a certificate for
// the new key is installed, every attempt asks for that same key: a relay
// renews a certificate once, and answers a retry (its first answer lost
// on the way) only with the certificate it issued for that key.
func (r *Renewer) Renew(ctx context.Context) error {
	name := r.KeyPair.Certificate().Leaf.Subject.CommonName
	csr, key, err := r.nextKey(name)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range r.Relays {
		resp, err := enrol.Renew(ctx, t.Addr, t.TLS, name, csr)
		if err != nil {
			errs = append(errs, fmt.Errorf("relay %s: %w", t.Addr, err))
			continue
		}
		leaf, err := r.usable(t, resp, key)
		if err != nil {
			errs = append(errs, fmt.Errorf("relay %s sent a certificate this edge cannot use; the current one stays: %w", t.Addr, err))
			continue
		}
		// The key first: a crash between the two writes leaves the old
		// certificate with the new key, which LoadKeyPair refuses loudly,
		// rather than a silent mismatch the other way round.
		if err := certs.WriteFile(r.KeyFile, key, 0o600); err != nil {
			return err
		}
		if err := certs.WriteFile(r.CertFile, []byte(resp.Certificate), 0o644); err != nil {
			return err
		}
		if err := r.KeyPair.Reload(); err != nil {
			return err
		}
		if err := os.Remove(r.KeyFile + nextKeySuffix); err != nil {
			r.Log.Warn("renewal key left behind; the next renewal asks for it again", zap.Error(err))
		}
		r.Log.Info("tunnel certificate renewed", zap.String("relay", t.Addr),
			zap.String("cert_fingerprint", certs.Fingerprint(leaf)), zap.Time("not_after", r.KeyPair.Certificate().Leaf.NotAfter))
		return nil
	}
	return errors.Join(errs...)
}

// nextKeySuffix names the file, beside the key file, of the key a renewal
// asks a certificate for.
const nextKeySuffix = ".next"

// nextKey returns the key to renew for and a request for it: the one an
// earlier attempt saved, or a fresh one, saved before it is sent.
func (r *Renewer) nextKey(name string) (csrPEM, keyPEM []byte, err error) {
	path := r.KeyFile + nextKeySuffix
	if keyPEM, err = os.ReadFile(path); err == nil {
		if csrPEM, err = certs.NewCSRForKey(keyPEM, name); err == nil {
			return csrPEM, keyPEM, nil
		}
		r.Log.Warn("saved renewal key unusable; renewing for a fresh one", zap.String("path", path), zap.Error(err))
	}
	if csrPEM, keyPEM, err = certs.NewCSR(certs.ECDSAP256, name); err != nil {
		return nil, nil, err
	}
	return csrPEM, keyPEM, certs.WriteFile(path, keyPEM, 0o600)
}

// usable refuses an answer that would shut the edge out of the tunnel
// once installed: a certificate for another key, from a CA other than the
// pinned tunnel CA, not for client authentication, or not valid now. It
// returns the certificate; the answer's Fingerprint field is not trusted.
func (r *Renewer) usable(t Target, resp enrol.Response, key []byte) (*x509.Certificate, error) {
	pair, err := tls.X509KeyPair([]byte(resp.Certificate), key)
	if err != nil {
		return nil, fmt.Errorf("not for the new key: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if t.TLS.RootCAs == nil { // Verify would fall back to the system roots
		return nil, errors.New("no pinned tunnel CA to check it against")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: t.TLS.RootCAs, CurrentTime: r.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("not a tunnel client certificate valid now: %w", err)
	}
	return leaf, nil
}

// Run checks every Every until ctx ends, renewing when Due.
func (r *Renewer) Run(ctx context.Context) {
	every := r.Every
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if r.Due() {
			if err := r.Renew(ctx); err != nil && ctx.Err() == nil {
				r.Log.Warn("tunnel certificate renewal failed; will retry", zap.Duration("retry_in", every),
					zap.Time("not_after", r.KeyPair.Certificate().Leaf.NotAfter), zap.Error(err))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Renewer) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
