package cli

import "net"

// ParseIPs parses IP address flags (repeatable, or comma-separated).
func ParseIPs(ss []string) ([]net.IP, error) { return parseIPs(ss) }
