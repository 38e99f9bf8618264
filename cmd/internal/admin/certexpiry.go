package admin

import (
	"crypto/x509"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait/strait/certs"
)

// CertExpiryMetric is the gauge of every certificate's expiry.
const CertExpiryMetric = "strait_cert_expiry_timestamp_seconds"

// CertExpiry exports when each certificate stops being valid, as Unix
// seconds, labelled by its role (tunnel, front, ca, ...). Key pairs are read
// at every scrape, so a renewed and reloaded certificate shows at once.
// Alert on `strait_cert_expiry_timestamp_seconds - time() < 14*86400`.
func CertExpiry(reg prometheus.Registerer, role string, kp *certs.KeyPair) {
	certExpiry(reg, role, func() *x509.Certificate {
		if c := kp.Certificate(); c != nil {
			return c.Leaf
		}
		return nil
	})
}

// CAExpiry exports the expiry of the first CA certificate in a PEM file
// (read once: a CA changes with a restart).
func CAExpiry(reg prometheus.Registerer, role, caFile string) {
	data, err := readCA(caFile)
	if err != nil {
		return
	}
	certExpiry(reg, role, func() *x509.Certificate { return data })
}

func certExpiry(reg prometheus.Registerer, role string, get func() *x509.Certificate) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: CertExpiryMetric,
		ConstLabels: prometheus.Labels{"role": role},
		Help:        "When the certificate stops being valid (NotAfter), in Unix seconds."},
		func() float64 {
			if c := get(); c != nil {
				return float64(c.NotAfter.Unix())
			}
			return 0
		}))
}

func readCA(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return certs.ParseCertPEM(data)
}
