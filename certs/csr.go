package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// NewCSR generates a key pair and a certificate request for it: the key
// never leaves the machine that will use the certificate (enrolment sends
// only the request). It returns the request and the PKCS#8 key, both PEM.
func NewCSR(alg Algorithm, commonName string) (csrPEM, keyPEM []byte, err error) {
	key, err := generateKey(alg)
	if err != nil {
		return nil, nil, err
	}
	if keyPEM, err = marshalKeyPEM(key); err != nil {
		return nil, nil, err
	}
	csrPEM, err = newCSR(key, commonName)
	return csrPEM, keyPEM, err
}

// NewCSRForKey is NewCSR for a key made earlier (PKCS#8 PEM, as NewCSR
// returns it): a renewal whose answer was lost asks again for the same key.
func NewCSRForKey(keyPEM []byte, commonName string) ([]byte, error) {
	der, err := pemBlock(keyPEM, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certs: a %T cannot sign", key)
	}
	return newCSR(signer, commonName)
}

func newCSR(key crypto.Signer, commonName string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: commonName}}, key)
	if err != nil {
		return nil, fmt.Errorf("certs: create certificate request: %w", err)
	}
	return pemEncode("CERTIFICATE REQUEST", der), nil
}

// SignCSR issues a leaf for the public key of a PEM certificate request
// after checking the request's self-signature (proof that the requester
// holds the key). Only the key is taken from the request: names, usage and
// validity come from opts, so a requester cannot ask for a server
// certificate or for a name it was not given.
func (ca *CA) SignCSR(csrPEM []byte, opts LeafOptions) (*x509.Certificate, []byte, error) {
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := leafTemplate(opts, ca.Cert.NotAfter)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: sign %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: parse issued certificate: %w", err)
	}
	return cert, pemEncode("CERTIFICATE", der), nil
}

// CheckCSRFor checks that a PEM certificate request is signed by the key
// of cert: whoever sent it holds that certificate's key.
func CheckCSRFor(csrPEM []byte, cert *x509.Certificate) error {
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return err
	}
	if k, ok := csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(cert.PublicKey) {
		return errors.New("certs: certificate request for another key")
	}
	return nil
}

// parseCSR parses a PEM certificate request and checks its self-signature.
func parseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	der, err := pemBlock(csrPEM, "CERTIFICATE REQUEST")
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parse certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certs: certificate request signature: %w", err)
	}
	return csr, nil
}

// pemBlock is the content of data's first PEM block, which must be of
// type typ.
func pemBlock(data []byte, typ string) ([]byte, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != typ {
		return nil, fmt.Errorf("certs: not a PEM %s", strings.ToLower(typ))
	}
	return block.Bytes, nil
}

// FullFingerprint is the SHA-256 of the certificate's DER in hex (64
// characters): what a join token pins and what revocation lists accept.
func FullFingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// ParseCertPEM parses the first CERTIFICATE block of data.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
	return nil, errors.New("certs: no PEM certificate")
}

// WriteFile writes data to path atomically with the given mode (0600 for
// keys, 0644 for certificates): readers and hot reload never see a partial
// file, and a key is never readable by others, not even for a moment.
func WriteFile(path string, data []byte, mode fs.FileMode) error {
	return writeFileAtomic(path, data, mode)
}

// MarshalKeyPEM encodes a private key as PKCS#8 PEM.
func MarshalKeyPEM(key crypto.Signer) ([]byte, error) { return marshalKeyPEM(key) }

// ChownLike gives paths the owner and group of dir when this process runs
// as root and dir belongs to someone else: `sudo strait-relay init` or
// `sudo strait-edge join` into /etc/strait, owned by the service's user,
// must leave files that service can read (keys are 0600).
func ChownLike(dir string, paths ...string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	for _, p := range paths {
		if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	return nil
}
