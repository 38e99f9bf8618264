package tunnel_test

import (
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
)

func TestLongPath(t *testing.T) {
	minute := time.Minute
	for _, tc := range []struct {
		name        string
		rtt, minRTT time.Duration
		want        bool
	}{
		{"no minimum: loopback", 50 * time.Microsecond, 0, true},
		{"negative minimum", 50 * time.Microsecond, -1, true},
		{"loopback under the default", 50 * time.Microsecond, tunnel.DefaultCompressMinRTT, false},
		{"border over the default", 150 * time.Millisecond, tunnel.DefaultCompressMinRTT, true},
		{"exactly the minimum", 2 * time.Millisecond, 2 * time.Millisecond, true},
		{"unknown round trip counts as slow", 0, tunnel.DefaultCompressMinRTT, true},
		{"setting unset", 1 * time.Millisecond, tunnel.CompressMinRTTSetting(nil), false},
		{"setting 0s", 1 * time.Millisecond, tunnel.CompressMinRTTSetting(new(time.Duration)), true},
		{"setting 1m", time.Second, tunnel.CompressMinRTTSetting(&minute), false},
	} {
		if got := tunnel.LongPath(tc.rtt, tc.minRTT); got != tc.want {
			t.Errorf("%s: LongPath(%v, %v) = %v, want %v", tc.name, tc.rtt, tc.minRTT, got, tc.want)
		}
	}
}

func TestSenderStateLossRate(t *testing.T) {
	for _, tt := range []struct {
		sent, lost uint64
		want       float64
	}{{0, 0, 0}, {200, 0, 0}, {200, 3, 0.015}} {
		if got := (tunnel.SenderState{PacketsSent: tt.sent, PacketsLost: tt.lost}).LossRate(); got != tt.want {
			t.Errorf("LossRate(sent %d, lost %d) = %v, want %v", tt.sent, tt.lost, got, tt.want)
		}
	}
}
