package wstun

import (
	"encoding/binary"
	"net/http"
	"net/http/httptest"
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

// TestWriteCoalescesDataHeader checks what goes on the wire: a data frame's
// header and body leave as one message, while frames without a body (window
// updates, pings, empty data frames such as a FIN) leave at once on their own.
func TestWriteCoalescesDataHeader(t *testing.T) {
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
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newWSConn(ws)
	body := []byte("hello")
	writes := [][]byte{
		yamuxHeader(yamuxTypeData, uint32(len(body))), body, // one message
		yamuxHeader(1, 65536),         // window update: alone
		yamuxHeader(yamuxTypeData, 0), // data frame without body (flags only): alone
		yamuxHeader(2, 7),             // ping: alone
	}
	for _, p := range writes {
		if n, err := c.Write(p); err != nil || n != len(p) {
			t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
		}
	}
	want := [][]byte{
		append(yamuxHeader(yamuxTypeData, uint32(len(body))), body...),
		yamuxHeader(1, 65536),
		yamuxHeader(yamuxTypeData, 0),
		yamuxHeader(2, 7),
	}
	for i, w := range want {
		select {
		case msg := <-got:
			if string(msg) != string(w) {
				t.Fatalf("message %d = %x, want %x", i, msg, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d never arrived", i)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range got { // wait for the server's reader to finish
	}
}
