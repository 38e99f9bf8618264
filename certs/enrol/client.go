package enrol

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/strait/strait/certs"
)

// Result is a successful enrolment.
type Result struct {
	Response
	// Relay is the address that answered.
	Relay string
	// CAPEM is the verified tunnel CA: the one certificate whose
	// fingerprint the token pins, and nothing else the relay's answer held.
	CAPEM []byte
}

// Enrol sends req (the token's secret, the edge's name and CSR) to the
// first relay of tok that answers. Before the secret leaves the machine it
// fetches the relay's CA, checks it against the token's fingerprint, and
// reconnects verifying the relay's certificate against that CA and the
// address's host name: a machine in the middle sees no secret. A refusal
// by the relay (used, expired or unknown token) is an *Error and ends the
// attempt; an unreachable relay moves on to the next.
func Enrol(ctx context.Context, tok Token, req Request) (Result, error) {
	var errs []error
	for _, addr := range tok.Relays {
		res, err := enrolAt(ctx, addr, tok.CAFingerprint, req)
		if err == nil {
			return res, nil
		}
		if _, ok := errors.AsType[*Error](err); ok {
			return Result{}, err
		}
		errs = append(errs, fmt.Errorf("relay %s: %w", addr, err))
	}
	return Result{}, errors.Join(errs...)
}

func enrolAt(ctx context.Context, addr, fingerprint string, req Request) (Result, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return Result{}, err
	}
	caPEM, err := fetchCA(ctx, addr)
	if err != nil {
		return Result{}, err
	}
	ca, err := certs.ParseCertPEM(caPEM)
	if err != nil {
		return Result{}, fmt.Errorf("relay sent no CA certificate: %w", err)
	}
	// The token's fingerprint is hex in either case (ParseToken accepts
	// both); FullFingerprint is lower case.
	if got := certs.FullFingerprint(ca); !strings.EqualFold(got, fingerprint) {
		return Result{}, &Error{Code: CodeFingerprint, Message: fmt.Sprintf(
			"the relay at %s has CA %s, the token pins %s: wrong address, a token from another relay, or someone in the middle; nothing was sent",
			addr, got[:16], fingerprint[:16])}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	client := enrolClient(&tls.Config{RootCAs: pool, ServerName: host})
	defer client.CloseIdleConnections()
	out, err := post(ctx, client, "https://"+addr+PathEnrol, req)
	if err != nil {
		return Result{}, err
	}
	// Only the pinned certificate, re-encoded: the answer came before the
	// relay was verified, so whatever followed that certificate in it may
	// be anyone's, and the edge trusts every certificate in its CA file.
	pinned := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	return Result{Response: out, Relay: addr, CAPEM: pinned}, nil
}

// Renew asks the relay at addr for a new certificate for the key in
// csrPEM, authenticating with the edge's current certificate: tc is the
// edge's tunnel config (its certificate, the pinned CA, the server name).
func Renew(ctx context.Context, addr string, tc *tls.Config, name string, csrPEM []byte) (Response, error) {
	c := tc.Clone()
	c.MinVersion = tls.VersionTLS13
	c.NextProtos = []string{"http/1.1"}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: c,
		TLSHandshakeTimeout: 10 * time.Second, DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	return post(ctx, client, "https://"+addr+PathRenew, Request{Name: name, CSR: string(csrPEM)})
}

// post sends req and decodes the answer or the refusal.
func post(ctx context.Context, client *http.Client, url string, req Request) (Response, error) {
	body, _ := json.Marshal(req) // strings only: cannot fail
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return Response{}, describe(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Response{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != nil {
			return Response{}, eb.Error
		}
		return Response{}, fmt.Errorf("relay answered %s", resp.Status)
	}
	var out Response
	if err := json.Unmarshal(data, &out); err != nil {
		return Response{}, fmt.Errorf("relay's answer: %w", err)
	}
	return out, nil
}

// fetchCA reads the relay's CA without verifying the relay: the answer is
// public, and trusted only after its fingerprint matches the token's.
func fetchCA(ctx context.Context, addr string) ([]byte, error) {
	client := enrolClient(&tls.Config{InsecureSkipVerify: true}) // checked against the pinned fingerprint by the caller
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+PathCA, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, describe(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("relay does not offer enrolment (GET %s: %s): is enrol configured in its relay.yaml?", PathCA, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<10))
}

func enrolClient(tc *tls.Config) *http.Client {
	tc.MinVersion = tls.VersionTLS13
	tc.NextProtos = []string{ALPN}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc,
		TLSHandshakeTimeout: 10 * time.Second, DisableKeepAlives: true}}
}

// describe names TLS failures in plain words (a relay that demands a
// client certificate here does not offer enrolment at all).
func describe(err error) error {
	reason := certs.DescribeVerifyError(err)
	if reason == "remote refused our certificate: certificate required" {
		return fmt.Errorf("relay does not offer enrolment on this port (it asked for a client certificate): %w", err)
	}
	if reason != err.Error() {
		return fmt.Errorf("%s: %w", reason, err)
	}
	return err
}
