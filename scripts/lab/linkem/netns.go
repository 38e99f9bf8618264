package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"unsafe"
)

// The two ends of the emulated border. The domestic side holds clients and
// edges, the overseas side relays and providers.
const (
	addrDomestic = "10.77.0.1"
	addrOverseas = "10.77.0.2"
)

// topology is the pair of namespaces and TUN devices one emulator owns.
type topology struct {
	prefix   string // namespace names are prefix+"-dom" and prefix+"-ovs"
	dom, ovs *os.File
}

func (t *topology) nsDom() string { return t.prefix + "-dom" }
func (t *topology) nsOvs() string { return t.prefix + "-ovs" }

// up creates both namespaces, a TUN device for each (opened here, in the
// root namespace, then moved in: the file descriptor stays attached), and
// addresses them as the two ends of a point-to-point link. On failure it
// removes whatever it made.
func (t *topology) up() (err error) {
	defer func() {
		if err != nil {
			t.down()
		}
	}()
	for _, ns := range []string{t.nsDom(), t.nsOvs()} {
		if err := ip("netns", "add", ns); err != nil {
			return err
		}
	}
	if t.dom, err = t.attach(t.nsDom(), "dom", addrDomestic, addrOverseas); err != nil {
		return err
	}
	t.ovs, err = t.attach(t.nsOvs(), "ovs", addrOverseas, addrDomestic)
	return err
}

// attach opens a TUN device, moves it into ns and configures it there.
func (t *topology) attach(ns, side, local, peer string) (*os.File, error) {
	name := t.prefix + "-" + side
	if len(name) > 15 {
		return nil, fmt.Errorf("device name %q longer than 15 bytes: use a shorter --ns prefix", name)
	}
	f, err := openTUN(name)
	if err != nil {
		return nil, err
	}
	steps := [][]string{
		{"link", "set", name, "netns", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", local, "peer", peer, "dev", name},
		// A long device queue: the emulator, not the kernel, decides drops.
		{"-n", ns, "link", "set", name, "mtu", "1500", "txqueuelen", "10000", "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// down closes the devices and deletes the namespaces; it is safe to call more
// than once and after a partial up.
func (t *topology) down() {
	for _, f := range []*os.File{t.dom, t.ovs} {
		if f != nil {
			f.Close()
		}
	}
	t.dom, t.ovs = nil, nil
	for _, ns := range []string{t.nsDom(), t.nsOvs()} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			_ = ip("netns", "del", ns)
		}
	}
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// openTUN creates a layer-3 TUN device without packet-information headers,
// so every read and write is exactly one IP packet.
func openTUN(name string) (*os.File, error) {
	const (
		tunSetIff = 0x400454ca
		iffTun    = 0x0001
		iffNoPI   = 0x1000
	)
	fd, err := syscall.Open("/dev/net/tun", syscall.O_RDWR|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	var req struct {
		name  [16]byte
		flags uint16
		_     [22]byte
	}
	copy(req.name[:], name)
	req.flags = iffTun | iffNoPI
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), tunSetIff, uintptr(unsafe.Pointer(&req))); errno != 0 {
		syscall.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, errno)
	}
	// Non-blocking, so the runtime poller serves reads and Close unblocks them.
	f := os.NewFile(uintptr(fd), name)
	if f == nil {
		return nil, errors.New("os.NewFile failed")
	}
	return f, nil
}
