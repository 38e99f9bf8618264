package wstun

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"testing"

	"go.uber.org/zap"
)

// TestPickCongestion runs auto against model kernels: what the kernel has
// (or may load) → what auto chooses.
func TestPickCongestion(t *testing.T) {
	tests := []struct {
		name      string
		settable  []string // what setsockopt accepts
		want      string
		refused   []string
		wantTries int
	}{
		{name: "bbr available", settable: []string{"reno", "cubic", "bbr"}, want: "bbr", wantTries: 1},
		{name: "bbr loadable only (not yet listed)", settable: []string{"bbr", "reno"}, want: "bbr", wantTries: 1},
		{name: "no bbr: cubic", settable: []string{"reno", "cubic"}, want: "cubic", refused: []string{"bbr"}, wantTries: 2},
		{name: "bbr not permitted: cubic", settable: []string{"cubic"}, want: "cubic", refused: []string{"bbr"}, wantTries: 2},
		{name: "only reno: keep the default", settable: []string{"reno"}, want: "", refused: []string{"bbr", "cubic"}, wantTries: 2},
		{name: "nothing settable", want: "", refused: []string{"bbr", "cubic"}, wantTries: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tries := 0
			got, refused := pickCongestion(func(name string) error {
				tries++
				if slices.Contains(tt.settable, name) {
					return nil
				}
				return errors.New("not available in this kernel")
			})
			if got != tt.want || fmt.Sprint(refused) != fmt.Sprint(tt.refused) || tries != tt.wantTries {
				t.Fatalf("pick = %q, refused %v after %d tries; want %q, %v after %d", got, refused, tries, tt.want, tt.refused, tt.wantTries)
			}
		})
	}
}

func TestValidCongestion(t *testing.T) {
	for _, v := range []string{"", "auto", "bbr", "cubic", "reno", "htcp", "bbr2", "dctcp"} {
		if err := ValidCongestion(v); err != nil {
			t.Errorf("ValidCongestion(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"BBR", "bbr cubic", "../x", "averyveryverylongname", "-"} {
		if err := ValidCongestion(v); err == nil {
			t.Errorf("ValidCongestion(%q) accepted", v)
		}
	}
}

// TestResolveSockopts checks the start-up decisions: a forced name the
// kernel refuses fails with a message naming it, a malformed one too, and
// the lowat defaults and can be turned off.
func TestResolveSockopts(t *testing.T) {
	log := zap.NewNop()
	if _, err := resolveSockopts(Config{TCPCongestion: "nosuchcc"}, log); err == nil {
		t.Fatal("an unknown congestion control was accepted")
	} else {
		t.Log(err)
	}
	if _, err := resolveSockopts(Config{TCPCongestion: "Bad Name"}, log); err == nil {
		t.Fatal("a malformed congestion control name was accepted")
	}
	o, err := resolveSockopts(Config{}, log)
	if err != nil || o.lowat != DefaultNotSentLowat {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	if o, _ = resolveSockopts(Config{TCPNotSentLowat: -1}, log); o.lowat != 0 {
		t.Fatalf("negative lowat kept %d", o.lowat)
	}
}

// TestSockoptsOnLoopback applies the options to a real accepted socket, as
// the relay does, and reads them back.
func TestSockoptsOnLoopback(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("socket options are chosen on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	for _, cc := range []string{"reno", "cubic", "bbr"} {
		if probeCongestion(cc) != nil {
			t.Logf("%s: not settable here, skipped", cc)
			continue
		}
		o, err := resolveSockopts(Config{TCPCongestion: cc, TCPNotSentLowat: 32 << 10}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		o.applyConn(server)
		if got := socketInfo(server); got != (SocketInfo{Congestion: cc, NotSentLowat: 32 << 10}) {
			t.Fatalf("read back %+v, want %s with a 32 KiB lowat", got, cc)
		}
	}
	// A connection with no TCP socket under it is left alone.
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if got := socketInfo(p1); got != (SocketInfo{}) {
		t.Fatalf("pipe: %+v", got)
	}
}
