package dispatch

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestClientTextHidesAddresses: what the client reads of a transport
// failure names the failure, never the provider's URL, host or address.
func TestClientTextHidesAddresses(t *testing.T) {
	refused := &url.Error{Op: "Post", URL: "http://10.1.2.3:8443/v1/chat/completions", Err: &net.OpError{Op: "dial", Net: "tcp",
		Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8443}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	dns := &url.Error{Op: "Post", URL: "https://llm.internal.example:8443/v1", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &net.DNSError{Err: "no such host", Name: "llm.internal.example", IsNotFound: true}}}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{refused, "dial: connect: connection refused"},
		{dns, "cannot resolve the provider's host name"},
		{fmt.Errorf("wrapped: %w", errFirstByte), "no first byte from the provider within the time limit"},
		{errors.New(`read tcp 192.168.1.10:40000->10.1.2.3:443: read: connection reset by peer; see https://llm.internal.example/x and [fd00::1]:443 llm.internal.example:8443`),
			"read tcp [provider]->[provider]: read: connection reset by peer; see [provider] and [provider] [provider]"},
	} {
		got := clientText(tc.err)
		if got != tc.want {
			t.Errorf("clientText(%v) = %q, want %q", tc.err, got, tc.want)
		}
		for _, leak := range []string{"10.1.2.3", "8443", "llm.internal", "http"} {
			if strings.Contains(got, leak) {
				t.Errorf("clientText(%v) = %q leaks %q", tc.err, got, leak)
			}
		}
	}
}
