package relaycmd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/strait/strait/certs"
)

// TestCheckNeverBindsConfiguredPorts: check builds the relay on throwaway
// loopback sockets; when one cannot be bound, check must fail, not leave
// it to Build, which would bind the configured address: the real port of
// a relay that may be running, or about to start. The configured
// addresses here are held by the test, and a socket check binds fails
// with errRefused.
func TestCheckNeverBindsConfiguredPorts(t *testing.T) {
	dir := t.TempDir()
	files, err := certs.Generate(certs.GenerateOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	errRefused := errors.New("refused by the test")
	for _, tc := range []struct {
		name, lines, fail, wantErr string // fail: the network whose sockets fail
	}{
		{"bound", "listen: " + tcp.Addr().String() + "\nlisten_quic: " + udp.LocalAddr().String(), "", ""},
		{"listen", "listen: " + tcp.Addr().String() + "\nlisten_quic: off", "tcp", "listen"},
		{"listen_quic", "listen_quic: " + udp.LocalAddr().String(), "udp", "listen_quic"},
		{"admin_listen", "listen_quic: " + udp.LocalAddr().String() + "\nadmin_listen: " + tcp.Addr().String(), "tcp", "admin_listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "relay.yaml")
			config := fmt.Sprintf("%s\ntls: {cert: %s, key: %s, client_ca: %s}\nproviders: [{kind: openai, base_url: https://api.openai.com/v1, api_keys: [sk-test-0123456789]}]\n",
				tc.lines, files.RelayCert, files.RelayKey, files.CACert)
			if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}
			lc := net.ListenConfig{Control: func(network, _ string, _ syscall.RawConn) error {
				if tc.fail != "" && strings.HasPrefix(network, tc.fail) {
					return errRefused
				}
				return nil
			}}
			err := check(io.Discard, path, lc)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("check: %v", err)
			case tc.wantErr != "" && (!errors.Is(err, errRefused) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("check: %v; want the refused loopback socket for %s", err, tc.wantErr)
			}
		})
	}
}
