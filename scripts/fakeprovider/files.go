package fakeprovider

import (
	"bytes"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// fileStore is the account's uploaded files (OpenAI's Files API): one
// store per Server, shared by every request that presents a valid key,
// exactly like the real account behind a provider key. It is what makes
// the tenant-isolation tests meaningful: without the edge's endpoint
// policy, any client key could list, read and delete what another put
// here.
type fileStore struct {
	fmu   sync.Mutex
	files []object // in upload order
}

func (s *fileStore) add(f object) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.files = append(s.files, f)
}

func (s *fileStore) list() []object {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return append([]object{}, s.files...)
}

func (s *fileStore) find(id string) (object, bool) {
	for _, f := range s.list() {
		if f[0].value == id {
			return f, true
		}
	}
	return nil, false
}

func (s *fileStore) remove(id string) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	for i, f := range s.files {
		if f[0].value == id {
			s.files = append(s.files[:i], s.files[i+1:]...)
			return true
		}
	}
	return false
}

// openAIFiles routes /v1/files and /v1/files/{id}; nil for other paths.
func openAIFiles(method, p string) handler {
	id, one := strings.CutPrefix(p, "/v1/files/")
	switch {
	case p == "/v1/files" && method == http.MethodPost:
		return openAIUploadFile
	case p == "/v1/files" && method == http.MethodGet:
		return func(c *call) {
			c.writeJSON(http.StatusOK, object{{"object", "list"}, {"data", c.files.list()}, {"has_more", false}})
		}
	case one && id != "" && !strings.Contains(id, "/") && method == http.MethodGet:
		return func(c *call) {
			if f, ok := c.files.find(id); ok {
				c.writeJSON(http.StatusOK, f)
				return
			}
			c.fail(&apiError{status: http.StatusNotFound, message: "No such File object: " + id})
		}
	case one && id != "" && !strings.Contains(id, "/") && method == http.MethodDelete:
		return func(c *call) {
			if !c.files.remove(id) {
				c.fail(&apiError{status: http.StatusNotFound, message: "No such File object: " + id})
				return
			}
			c.writeJSON(http.StatusOK, object{{"id", id}, {"object", "file"}, {"deleted", true}})
		}
	}
	return nil
}

// openAIUploadFile stores a multipart upload (fields purpose and file).
func openAIUploadFile(c *call) {
	_, params, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		c.fail(&apiError{status: http.StatusBadRequest, message: "Expected a multipart/form-data upload"})
		return
	}
	form, err := multipart.NewReader(bytes.NewReader(c.body), params["boundary"]).ReadForm(maxBody)
	if err != nil || len(form.File["file"]) != 1 || len(form.Value["purpose"]) != 1 {
		c.fail(&apiError{status: http.StatusBadRequest, message: "The upload needs one file and a purpose", param: "file"})
		return
	}
	defer form.RemoveAll()
	fh := form.File["file"][0]
	f := object{{"id", "file-fake" + strconv.FormatInt(c.seq, 10)}, {"object", "file"}, {"bytes", fh.Size},
		{"created_at", c.start.Unix()}, {"filename", fh.Filename}, {"purpose", form.Value["purpose"][0]}}
	c.files.add(f)
	c.writeJSON(http.StatusOK, f)
}
