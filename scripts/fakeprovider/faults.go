package fakeprovider

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
)

// Faults for the relay's upstream tests, beyond Config.Fault:
//
//   - per key: SetKeyFault makes requests presenting one provider key fail
//     (a rate-limited or revoked key among good ones);
//   - X-Fake-Break-After: N cuts the connection after N streamed pieces,
//     without the family's end marker (the provider dying mid-stream);
//   - X-Fake-Piece-Bytes: N makes the first piece N bytes long, so one SSE
//     line carries megabytes (a base64 image).
//
// Silences come from X-Fake-Tokens: 2 with X-Fake-Interval-Ms: the gap.

// keyFaults holds the per-key faults of a Server.
type keyFaults struct {
	kmu sync.Mutex
	km  map[string]Fault
}

// SetKeyFault makes every request that presents key fail with f, after
// authentication; the zero Fault removes it. Count limits it as usual.
func (s *Server) SetKeyFault(key string, f Fault) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	if s.km == nil {
		s.km = map[string]Fault{}
	}
	if !f.active() {
		delete(s.km, key)
		return
	}
	s.km[key] = f
}

// takeKeyFault returns the fault for the key r presents, consuming one
// unit of a Count-limited fault.
func (s *Server) takeKeyFault(r *http.Request) (Fault, bool) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	key := PresentedKey(r)
	f, ok := s.km[key]
	if !ok {
		return Fault{}, false
	}
	if f.Count > 0 {
		if f.Count--; f.Count == 0 {
			delete(s.km, key)
		} else {
			s.km[key] = f
		}
	}
	return f, true
}

// PresentedKey is the provider key a request carries, in whichever header
// its family uses.
func PresentedKey(r *http.Request) string {
	for _, v := range []string{bearer(r), r.Header.Get("x-api-key"), r.Header.Get("x-goog-api-key"), r.Header.Get("api-key")} {
		if v != "" {
			return v
		}
	}
	return ""
}

// shape is the stream shaping one request asked for.
type shape struct {
	breakAfter int // cut the connection after this many pieces; 0: never
	pieceBytes int // first piece length; 0: normal
}

func (c *call) readShape() {
	c.shape.breakAfter, _ = headerInt(c.r, "X-Fake-Break-After")
	c.shape.pieceBytes, _ = headerInt(c.r, "X-Fake-Piece-Bytes")
}

// reshape applies X-Fake-Piece-Bytes to a completion.
func (c *call) reshape(cp completion) completion {
	if n := c.shape.pieceBytes; n > 0 && len(cp.pieces) > 0 {
		cp.pieces[0] = strings.Repeat("x", n)
	}
	return cp
}

var errInjectedBreak = errors.New("fakeprovider: connection cut by X-Fake-Break-After")

// broken reports whether the stream must be cut before piece i.
func (c *call) broken(i int) bool { return c.shape.breakAfter > 0 && i >= c.shape.breakAfter }

// The account behind the fake's keys owns this organization and project,
// and no Gemini files: a request naming others is refused the way the real
// APIs refuse it. Such refusals are the client's doing, not the key's; the
// relay must pass them on and leave its keys alone.
const (
	OwnedOrganization = "org-fake"
	OwnedProject      = "proj_fake"
)

func (openAIAPI) foreign(c *call) *apiError {
	if org := c.r.Header.Get("OpenAI-Organization"); org != "" && org != OwnedOrganization {
		return &apiError{status: http.StatusUnauthorized, code: "mismatched_organization",
			message: "OpenAI-Organization header should match organization for API key"}
	}
	if p := c.r.Header.Get("OpenAI-Project"); p != "" && p != OwnedProject {
		return &apiError{status: http.StatusUnauthorized, code: "mismatched_project",
			message: "OpenAI-Project header should match project for API key"}
	}
	return nil
}

func (anthropicAPI) foreign(*call) *apiError { return nil }

// foreign refuses a fileData part naming an uploaded file: the fake's
// project owns none.
func (geminiAPI) foreign(c *call) *apiError {
	var req struct {
		Contents []struct {
			Parts []struct {
				FileData *struct {
					FileURI string `json:"fileUri"`
				} `json:"fileData"`
			} `json:"parts"`
		} `json:"contents"`
	}
	if json.Unmarshal(c.body, &req) != nil {
		return nil
	}
	for _, ct := range req.Contents {
		for _, p := range ct.Parts {
			if p.FileData == nil {
				continue
			}
			if i := strings.LastIndex(p.FileData.FileURI, "/files/"); i >= 0 {
				return &apiError{status: http.StatusForbidden, message: "You do not have permission to access the File " +
					p.FileData.FileURI[i+len("/files/"):] + " or it may not exist."}
			}
		}
	}
	return nil
}
