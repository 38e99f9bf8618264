// Package forward carries one client request across the tunnel and streams
// the answer back, flushing each piece as it arrives.
//
// Each request is framed as a Request header, then Data frames, then an End
// frame (see package proto). The relay answers with Dispatched (sent before
// it calls the provider), a Response header, Data frames, and an End
// carrying a code. The End code tells a complete body from one that broke
// off, even over yamux, which has no stream reset.
//
// A request whose stream breaks before the relay's Dispatched frame never
// reached the provider, and neither did one that a draining relay refuses
// with going_away. The Forwarder resends such a request from the body it
// has buffered, on up to five streams. After Dispatched it never resends,
// because the call may already have cost money, and the client gets a 502
// that says so. One window remains: if the tunnel dies within about one
// round trip after the relay wrote Dispatched, before the edge has read it,
// the edge cannot tell that the request was sent. The relay can, so it
// remembers the request IDs it took upstream for 10 minutes and answers a
// resend of one with a duplicate code, which the client gets as a 502 that
// says the request was not retried. The window stays open only when the
// resend lands on a different relay.
package forward
