package wstun

import (
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// yamuxHeader builds a yamux v0 frame header of type typ for stream 1.
func yamuxHeader(typ byte, length uint32) []byte {
	h := make([]byte, yamuxHeaderLen)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:], 1)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

// recordingPeer dials a WebSocket server on loopback that passes every
// message it receives to got, which it closes when the connection ends.
func recordingPeer(t *testing.T) (*websocket.Conn, chan []byte) {
	t.Helper()
	got := make(chan []byte, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				close(got)
				return
			}
			got <- msg
		}
	}))
	t.Cleanup(srv.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return ws, got
}

// TestWriteKeepsFramesWhole checks what goes on the wire: a data frame's
// header and body leave in one message, every message holds whole frames
// only (the writer batches waiting frames), urgent frames may overtake, and
// a stream's own frames keep their order.
func TestWriteKeepsFramesWhole(t *testing.T) {
	ws, got := recordingPeer(t)
	c := newWSConn(ws)
	body := []byte("hello")
	writes := [][]byte{
		yamuxHeader(yamuxTypeData, uint32(len(body))), body, // one frame
		yamuxHeader(1, 65536),         // window update: urgent
		yamuxHeader(yamuxTypeData, 0), // data frame without body (flags only): after stream 1's data
		yamuxHeader(2, 7),             // ping: urgent
	}
	for _, p := range writes {
		if n, err := c.Write(p); err != nil || n != len(p) {
			t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
		}
	}
	data := string(append(yamuxHeader(yamuxTypeData, uint32(len(body))), body...))
	want := map[string]bool{data: true, string(yamuxHeader(1, 65536)): true,
		string(yamuxHeader(yamuxTypeData, 0)): true, string(yamuxHeader(2, 7)): true}
	var order []string
	for len(order) < len(want) {
		select {
		case msg := <-got:
			for len(msg) > 0 {
				if len(msg) < yamuxHeaderLen {
					t.Fatalf("message ends inside a frame header: %x", msg)
				}
				n := yamuxHeaderLen
				if msg[1] == yamuxTypeData {
					n += int(binary.BigEndian.Uint32(msg[8:]))
				}
				if n > len(msg) {
					t.Fatalf("frame split across messages: %x", msg)
				}
				f := string(msg[:n])
				if !want[f] {
					t.Fatalf("unexpected frame %x", f)
				}
				order = append(order, f)
				msg = msg[n:]
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d frames arrived", len(order), len(want))
		}
	}
	if slices.Index(order, data) > slices.Index(order, string(yamuxHeader(yamuxTypeData, 0))) {
		t.Fatalf("stream 1's frames out of order: %x", order)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range got { // wait for the server's reader to finish
	}
}
