package enrol

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/certs/enrol"
)

// DefaultValidity is how long an enrolled edge's certificate is valid.
const DefaultValidity = 365 * 24 * time.Hour

// Handler serves the enrolment endpoints (enrol.PathCA, enrol.PathEnrol).
// The tunnel listener routes connections that asked for enrol.ALPN here,
// and only those.
type Handler struct {
	CA    *certs.CA
	Store *Store
	// Validity of issued certificates; zero means DefaultValidity.
	Validity time.Duration
	Log      *zap.Logger
	// Now is the clock; nil means time.Now (tests set it).
	Now func() time.Time
}

// ServeHTTP answers GET enrol.PathCA and POST enrol.PathEnrol.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == enrol.PathCA && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(h.CA.CertPEM)
	case r.URL.Path == enrol.PathEnrol && r.Method == http.MethodPost:
		h.enrol(w, r)
	default:
		refuse(w, http.StatusNotFound, &enrol.Error{Code: enrol.CodeBadCSR, Message: "unknown enrolment endpoint"})
	}
}

func (h *Handler) enrol(w http.ResponseWriter, r *http.Request) {
	var req enrol.Request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, enrol.MaxRequestBytes)).Decode(&req); err != nil {
		h.refused(w, r, "", &enrol.Error{Code: enrol.CodeBadCSR, Message: "malformed enrolment request: " + err.Error()})
		return
	}
	id := enrol.SecretID(req.Secret) // never the secret itself, in logs or answers
	now := h.now()
	var issued []byte
	var edge EdgeRecord
	err := h.Store.Modify(func(st *State) error {
		var err error
		edge, err = redeem(st, req.Secret, now, func(t TokenRecord) (EdgeRecord, error) {
			cert, certPEM, err := h.CA.SignCSR([]byte(req.CSR), certs.LeafOptions{Kind: certs.ClientLeaf,
				CommonName: edgeName(req.Name), Validity: h.validity()})
			if err != nil {
				return EdgeRecord{}, &enrol.Error{Code: enrol.CodeBadCSR, Message: err.Error()}
			}
			issued = certPEM
			return EdgeRecord{Name: cert.Subject.CommonName, Fingerprint: certs.FullFingerprint(cert),
				Serial: cert.SerialNumber.Text(16), NotAfter: cert.NotAfter, EnrolledAt: now,
				Remote: r.RemoteAddr, TokenID: t.ID}, nil
		})
		return err
	})
	if err != nil {
		e, ok := errors.AsType[*enrol.Error](err)
		if !ok {
			h.Log.Error("enrolment store", zap.String("path", h.Store.Path()), zap.Error(err))
			e = &enrol.Error{Code: enrol.CodeServer, Message: "the relay could not record the enrolment; see its log"}
		}
		h.refused(w, r, id, e)
		return
	}
	h.Log.Info("edge enrolled", zap.String("edge", edge.Name), zap.String("cert_fingerprint", short(edge.Fingerprint)),
		zap.String("remote", r.RemoteAddr), zap.String("token_id", id), zap.Time("not_after", edge.NotAfter))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(enrol.Response{Certificate: string(issued), CA: string(h.CA.CertPEM), Fingerprint: edge.Fingerprint})
}

func (h *Handler) refused(w http.ResponseWriter, r *http.Request, tokenID string, e *enrol.Error) {
	h.Log.Warn("enrolment refused", zap.String("remote", r.RemoteAddr), zap.String("token_id", tokenID),
		zap.String("code", e.Code), zap.String("reason", e.Message))
	status := http.StatusForbidden
	switch e.Code {
	case enrol.CodeBadCSR:
		status = http.StatusBadRequest
	case enrol.CodeServer:
		status = http.StatusInternalServerError
	}
	refuse(w, status, e)
}

func refuse(w http.ResponseWriter, status int, e *enrol.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(enrol.ErrorBody{Error: e})
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) validity() time.Duration {
	if h.Validity > 0 {
		return h.Validity
	}
	return DefaultValidity
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// edgeName keeps a requested name to a short, log-safe host-name-like
// string: it lands in certificates, logs and `edges list`.
func edgeName(name string) string {
	name = unsafeName.ReplaceAllString(name, "-")
	if len(name) > 63 {
		name = name[:63]
	}
	if name == "" || name == "-" {
		return "strait-edge"
	}
	return name
}
