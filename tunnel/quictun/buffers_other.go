//go:build !linux

package quictun

import (
	"errors"
	"net"
)

func forceBuffers(*net.UDPConn, int) {}

func bufferSizes(*net.UDPConn) (int, int, error) {
	return 0, 0, errors.New("buffer sizes are read only on Linux")
}
