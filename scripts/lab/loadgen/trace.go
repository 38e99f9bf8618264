package main

import (
	"encoding/json"
	"os"
	"time"
)

// traceLine is one measured request in a --trace file: where the time to
// the first token went, as far as the client can tell. Times in ms; start
// is from the run's start, so requests of one run can be lined up.
type traceLine struct {
	Label        map[string]string `json:"label"`
	StartMs      float64           `json:"start_ms"`
	HeaderMs     float64           `json:"header_ms"` // response header (0: none)
	TTFTMs       float64           `json:"ttft_ms"`
	TotalMs      float64           `json:"total_ms"`
	OK           bool              `json:"ok"`
	Cause        string            `json:"cause,omitempty"`
	ServerTiming string            `json:"server_timing,omitempty"`
	RequestID    string            `json:"request_id,omitempty"`
	// The client's legs (omitted when the request did not take them):
	// TCP connected, TLS handshake done, request written.
	ConnectMs float64 `json:"connect_ms,omitempty"`
	TLSMs     float64 `json:"tls_ms,omitempty"`
	WroteMs   float64 `json:"wrote_ms,omitempty"`
	// A whole body's progress: when each MiB of it had arrived.
	MiBMs []float64 `json:"mib_ms,omitempty"`
}

// writeTrace appends one line per sample to path.
func writeTrace(path string, label map[string]string, start time.Time, samples []sample) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, s := range samples {
		l := traceLine{Label: label, StartMs: msf(s.start.Sub(start)), HeaderMs: msf(s.header), TTFTMs: msf(s.ttft),
			TotalMs: msf(s.total), OK: s.ok, Cause: s.cause, ServerTiming: s.timing, RequestID: s.id,
			ConnectMs: msf(s.connected), TLSMs: msf(s.handshook), WroteMs: msf(s.wrote)}
		for _, d := range s.mib {
			l.MiBMs = append(l.MiBMs, msf(d))
		}
		if err = enc.Encode(l); err != nil {
			break
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
