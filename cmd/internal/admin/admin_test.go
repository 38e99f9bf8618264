package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPprofOnlyWhenEnabled: the profiler is reachable on the admin
// listener only when the config asks for it.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pprof bool
		want  int
	}{
		{"default off", false, http.StatusNotFound},
		{"enabled", true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(Handler(Config{Pprof: tc.pprof}))
			defer srv.Close()
			for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/mutex?debug=1"} {
				resp, err := http.Get(srv.URL + p)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("GET %s: %d, want %d", p, resp.StatusCode, tc.want)
				}
				if tc.pprof && p == "/debug/pprof/" && !strings.Contains(string(body), "goroutine") {
					t.Errorf("GET %s: no profile index: %.200s", p, body)
				}
			}
		})
	}
}
