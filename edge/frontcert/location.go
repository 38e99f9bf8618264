package frontcert

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// orderLocation lets x/crypto/acme finish orders on servers that answer
// the finalize request without a Location header. RFC 8555 does not
// require one there (pebble and some commercial CAs omit it), but
// acme.Client.CreateOrderCert polls the order at that header's URL and
// fails with `Post "": unsupported protocol scheme` without it
// (golang/go#77704). It remembers each new order's URL and finalize URL
// and adds the missing header. It never changes a header that is present.
type orderLocation struct {
	base http.RoundTripper

	mu      sync.Mutex
	byFinal map[string]string // finalize URL → order URL
}

func (o *orderLocation) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost {
		return resp, err
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		if resp.StatusCode == http.StatusCreated {
			o.learn(resp, loc)
		}
		return resp, nil
	}
	o.mu.Lock()
	order, ok := o.byFinal[req.URL.String()]
	o.mu.Unlock()
	if ok {
		resp.Header.Set("Location", order)
	}
	return resp, nil
}

// learn records a new order's finalize URL, keeping the body readable.
func (o *orderLocation) learn(resp *http.Response, orderURL string) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return
	}
	var v struct {
		Finalize string `json:"finalize"`
	}
	if json.Unmarshal(body, &v) != nil || v.Finalize == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byFinal == nil {
		o.byFinal = map[string]string{}
	}
	if len(o.byFinal) > 1000 { // orders are few; bound it anyway
		clear(o.byFinal)
	}
	o.byFinal[v.Finalize] = orderURL
}
