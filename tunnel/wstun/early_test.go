package wstun_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

// TestListenerAcceptsPipelinedData: an edge may send its first yamux frames
// right behind the upgrade request, without waiting for the 101. Written in
// one TLS record, request and frame reach net/http's read buffer together;
// the relay must upgrade anyway and hand every byte of the frame to the
// session.
func TestListenerAcceptsPipelinedData(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	ln := listen(t, pki, testConfig())
	payload := make([]byte, 3000) // request and frame fit in net/http's 4 KiB read buffer
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}

	tc := pki.ClientConfig()
	tc.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", ln.Addr().String(), tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	req, err := http.NewRequest(http.MethodGet, "https://"+ln.Addr().String()+wstun.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")))
	var out bytes.Buffer
	if err := req.Write(&out); err != nil {
		t.Fatal(err)
	}
	out.Write(clientFrame(yamuxSYNData(1, payload)))
	if _, err := c.Write(out.Bytes()); err != nil { // one write: one TLS record
		t.Fatal(err)
	}

	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("relay refused the pipelined upgrade: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %s, want 101", resp.Status)
	}
	relay := accept(t, ln)
	st, err := relay.AcceptStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(opTimeout))
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(st, got); err != nil {
		t.Fatalf("read the pipelined stream: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("the pipelined stream's bytes differ from those sent")
	}
}

// yamuxSYNData is a yamux data frame that opens stream id and carries p
// (yamux's spec: version 0, type 0 data, flag 1 SYN, big-endian fields).
func yamuxSYNData(id uint32, p []byte) []byte {
	f := make([]byte, 12, 12+len(p))
	binary.BigEndian.PutUint16(f[2:], 1)
	binary.BigEndian.PutUint32(f[4:], id)
	binary.BigEndian.PutUint32(f[8:], uint32(len(p)))
	return append(f, p...)
}

// clientFrame is one final binary WebSocket frame as a client sends it:
// masked (RFC 6455 §5.2), here with a fixed key.
func clientFrame(p []byte) []byte {
	f := []byte{0x82}
	switch {
	case len(p) < 126:
		f = append(f, 0x80|byte(len(p)))
	case len(p) <= 0xffff:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(len(p)))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(len(p)))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	f = append(f, key[:]...)
	for i, b := range p {
		f = append(f, b^key[i%4])
	}
	return f
}
