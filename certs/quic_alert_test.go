package certs

import (
	"errors"
	"testing"
)

// TestDescribeQUICRemoteAlert: quic-go reports a peer's TLS alert as a
// CRYPTO_ERROR transport error; it must read like the TCP case.
func TestDescribeQUICRemoteAlert(t *testing.T) {
	tests := []struct{ err, want string }{
		{"quictun: dial 127.0.0.1:1: CRYPTO_ERROR 0x12a (remote): tls: bad certificate", "remote refused our certificate: bad certificate"},
		{"CRYPTO_ERROR 0x174 (remote): tls: certificate required", "remote refused our certificate: certificate required"},
		{"CRYPTO_ERROR 0x12a (local): tls: bad certificate", "CRYPTO_ERROR 0x12a (local): tls: bad certificate"},
	}
	for _, tt := range tests {
		if got := DescribeVerifyError(errors.New(tt.err)); got != tt.want {
			t.Errorf("DescribeVerifyError(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
