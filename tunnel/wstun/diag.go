package wstun

import (
	"net/http"
	"strconv"

	"github.com/strait/strait/tunnel"
)

// DiagDownloadPath serves an authenticated edge n zero bytes
// (?bytes=n, at most DiagMaxBytes) on the tunnel's TLS port: the short
// transfer `strait-edge doctor` times. Its Date header also gives the
// relay's clock.
const DiagDownloadPath = "/strait/diag/download"

// DiagMaxBytes bounds one diagnostic transfer.
const DiagMaxBytes = 8 << 20

var zeros = make([]byte, 32<<10)

// diagDownload is reached only with a verified client certificate (see
// serveHTTP), so it lends no bandwidth to strangers.
func diagDownload(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("bytes"))
	if err != nil || n < 0 || n > DiagMaxBytes {
		http.Error(w, "bytes: 0 to 8388608", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.Header().Set("Content-Type", "application/octet-stream")
	for n > 0 {
		k := min(n, len(zeros))
		if _, err := w.Write(zeros[:k]); err != nil {
			return
		}
		n -= k
	}
}

// SocketInfoOf reports the TCP socket settings of s when it is a
// WebSocket session, and false for any other session.
func SocketInfoOf(s tunnel.Session) (SocketInfo, bool) {
	ws, ok := s.(*session)
	if !ok {
		return SocketInfo{}, false
	}
	return ws.conn.sock, true
}
