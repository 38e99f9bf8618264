package tunneltest

import (
	"net"
	"sync/atomic"
)

// WriteCountingConn counts the Write calls made on the connection it
// wraps: how many writes (system calls, on a socket) a path costs, which
// tests of the edge's answers and the relay's upstream requests pin.
type WriteCountingConn struct {
	net.Conn
	Writes *atomic.Int32
}

func (c WriteCountingConn) Write(p []byte) (int, error) {
	c.Writes.Add(1)
	return c.Conn.Write(p)
}
