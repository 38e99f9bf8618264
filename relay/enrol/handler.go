package enrol

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

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

	refusedOnce sync.Once
	refusedLog  *zap.Logger // Log, sampled (refusalLog)
}

// Refusal lines are sampled: the first refusalBurst in each refusalTick,
// then one in refusalThereafter. Anyone who reaches the relay's port can
// ask to enrol with a made-up secret, and a line for each would let them
// fill the relay's disk; successes are rare (one per edge) and stay whole.
const (
	refusalTick       = 10 * time.Second
	refusalBurst      = 10
	refusalThereafter = 100
)

// refusalLog is Log for refusals, sampled.
func (h *Handler) refusalLog() *zap.Logger {
	h.refusedOnce.Do(func() {
		h.refusedLog = h.Log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewSamplerWithOptions(c, refusalTick, refusalBurst, refusalThereafter)
		}))
	})
	return h.refusedLog
}

// ServeHTTP answers GET enrol.PathCA and POST enrol.PathEnrol.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == enrol.PathCA && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(h.CA.CertPEM)
	case r.URL.Path == enrol.PathEnrol && r.Method == http.MethodPost && r.TLS == nil:
		h.enrol(w, r)
	case r.URL.Path == enrol.PathRenew && r.Method == http.MethodPost && r.TLS != nil && len(r.TLS.VerifiedChains) > 0:
		h.renew(w, r)
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
			var rec EdgeRecord
			rec, issued, err = h.sign(req.CSR, edgeName(req.Name), r.RemoteAddr, now)
			rec.TokenID = t.ID
			return rec, err
		})
		return err
	})
	if err != nil {
		h.storeRefusal(w, r, id, err)
		return
	}
	h.Log.Info("edge enrolled", zap.String("edge", edge.Name), zap.String("cert_fingerprint", short(edge.Fingerprint)),
		zap.String("remote", r.RemoteAddr), zap.String("token_id", id), zap.Time("not_after", edge.NotAfter))
	h.issued(w, edge, issued)
}

// sign issues a client certificate for the CSR's key under name.
func (h *Handler) sign(csr, name, remote string, now time.Time) (EdgeRecord, []byte, error) {
	cert, certPEM, err := h.CA.SignCSR([]byte(csr), certs.LeafOptions{Kind: certs.ClientLeaf,
		CommonName: name, Validity: h.validity()})
	if err != nil {
		return EdgeRecord{}, nil, &enrol.Error{Code: enrol.CodeBadCSR, Message: err.Error()}
	}
	return EdgeRecord{Name: cert.Subject.CommonName, Fingerprint: certs.FullFingerprint(cert),
		Serial: cert.SerialNumber.Text(16), NotAfter: cert.NotAfter, EnrolledAt: now, Remote: remote,
		Certificate: string(certPEM)}, certPEM, nil
}

// renew issues a new certificate to an enrolled edge that authenticated
// with its current one (the TLS layer verified the chain and the
// revocation list). The edge keeps its name; the store records the new
// certificate and which one it replaces. The old one stays valid until it
// expires, so an edge that fails to save the new one is not locked out.
// The old one renews once; asked again (the answer may never have reached
// the edge), it gets the same certificate again (see reissue).
func (h *Handler) renew(w http.ResponseWriter, r *http.Request) {
	var req enrol.Request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, enrol.MaxRequestBytes)).Decode(&req); err != nil {
		h.refused(w, r, "", &enrol.Error{Code: enrol.CodeBadCSR, Message: "malformed renewal request: " + err.Error()})
		return
	}
	old := certs.FullFingerprint(r.TLS.PeerCertificates[0])
	now := h.now()
	var issued []byte
	var edge EdgeRecord
	msg := "edge certificate renewed"
	err := h.Store.Modify(func(st *State) error {
		i := slices.IndexFunc(st.Edges, func(e EdgeRecord) bool { return e.Fingerprint == old })
		if i < 0 || st.Edges[i].RevokedAt != nil {
			return notEnrolled(old)
		}
		if to := st.Edges[i].RenewedTo; to != "" {
			msg = "edge certificate renewal asked again; the same certificate answered"
			var err error
			edge, err = reissue(st, old, to, req.CSR)
			issued = []byte(edge.Certificate)
			return err
		}
		var err error
		if edge, issued, err = h.sign(req.CSR, st.Edges[i].Name, r.RemoteAddr, now); err != nil {
			return err
		}
		edge.TokenID, edge.RenewedFrom = st.Edges[i].TokenID, old
		st.Edges[i].RenewedTo = edge.Fingerprint
		st.Edges = append(st.Edges, edge)
		return nil
	})
	if err != nil {
		h.storeRefusal(w, r, "", err)
		return
	}
	h.Log.Info(msg, zap.String("edge", edge.Name), zap.String("cert_fingerprint", short(edge.Fingerprint)),
		zap.String("renewed_from", short(old)), zap.String("remote", r.RemoteAddr), zap.Time("not_after", edge.NotAfter))
	h.issued(w, edge, issued)
}

// reissue answers old, renewed already to the certificate to, asking
// again: the first answer may never have reached the edge, which retries
// with the key it made then. It gets that same certificate, and only for a
// request signed by its key, while it is active; nothing new is issued,
// so a stolen old key gains nothing and revocation has nothing more to
// cover. Any other request is refused as before.
func reissue(st *State, old, to, csr string) (EdgeRecord, error) {
	i := slices.IndexFunc(st.Edges, func(e EdgeRecord) bool { return e.Fingerprint == to })
	if i < 0 || st.Edges[i].RevokedAt != nil || st.Edges[i].RenewedTo != "" {
		return EdgeRecord{}, notEnrolled(old)
	}
	cert, err := certs.ParseCertPEM([]byte(st.Edges[i].Certificate))
	if err != nil || certs.CheckCSRFor([]byte(csr), cert) != nil {
		return EdgeRecord{}, notEnrolled(old)
	}
	return st.Edges[i], nil
}

func notEnrolled(fingerprint string) *enrol.Error {
	return &enrol.Error{Code: enrol.CodeNotEnrolled, Message: fmt.Sprintf("certificate %s is not an active enrolled edge here "+
		"(made by hand, revoked, or renewed already for another key): join again with a token", short(fingerprint))}
}

func (h *Handler) issued(w http.ResponseWriter, edge EdgeRecord, certPEM []byte) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(enrol.Response{Certificate: string(certPEM), CA: string(h.CA.CertPEM), Fingerprint: edge.Fingerprint})
}

// storeRefusal answers an error from a store change: a refusal with its
// reason, or a server error logged here.
func (h *Handler) storeRefusal(w http.ResponseWriter, r *http.Request, tokenID string, err error) {
	e, ok := errors.AsType[*enrol.Error](err)
	if !ok {
		h.Log.Error("enrolment store", zap.String("path", h.Store.Path()), zap.Error(err))
		e = &enrol.Error{Code: enrol.CodeServer, Message: "the relay could not record the enrolment; see its log"}
	}
	h.refused(w, r, tokenID, e)
}

func (h *Handler) refused(w http.ResponseWriter, r *http.Request, tokenID string, e *enrol.Error) {
	h.refusalLog().Warn("enrolment refused", zap.String("remote", r.RemoteAddr), zap.String("token_id", tokenID),
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
