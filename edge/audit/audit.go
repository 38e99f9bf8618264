// Package audit writes the edge's audit log: one JSON object per request,
// appended to a file that lumberjack rotates by size and age. Prompt and
// completion bodies are recorded only when the operator switches it on.
package audit

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/strait/strait/edge/guard"
	"github.com/strait/strait/edge/usage"
)

// Config configures the audit log.
type Config struct {
	Path string // required
	// MaxSizeMB rotates the file past this size; zero means 100.
	MaxSizeMB int
	// MaxBackups and MaxAgeDays bound the rotated files kept; zero keeps
	// all.
	MaxBackups, MaxAgeDays int
	// Compress gzips rotated files.
	Compress bool
	// Bodies records request and response bodies (off by default: they
	// hold users' prompts and the models' answers).
	Bodies bool
}

// Entry is one request.
type Entry struct {
	Time       time.Time   `json:"time"`
	RequestID  string      `json:"request_id"`
	ClientIP   string      `json:"client_ip"`
	Key        string      `json:"key,omitempty"` // the key's name, never the key
	Family     string      `json:"family"`
	Method     string      `json:"method"`
	Path       string      `json:"path"`
	Model      string      `json:"model,omitempty"`
	Stream     bool        `json:"stream,omitempty"`
	Status     int         `json:"status"`
	Reason     string      `json:"reason,omitempty"` // why Strait refused or failed it
	TTFBMs     float64     `json:"ttfb_ms,omitempty"`
	DurationMs float64     `json:"duration_ms"`
	Usage      usage.Usage `json:"usage"`
	// UsageSource is "reported" (by the provider) or "estimated".
	UsageSource string  `json:"usage_source,omitempty"`
	Cost        float64 `json:"cost_usd,omitempty"`
	Attempts    int     `json:"attempts,omitempty"`
	Relay       string  `json:"relay,omitempty"`
	Session     string  `json:"session,omitempty"` // transport and local address of the tunnel session
	BytesIn     int64   `json:"bytes_in"`
	BytesOut    int64   `json:"bytes_out"`
	// Guard counts the border guard's finds in the request per category
	// and action, GuardOutput its word finds in the answer per category;
	// never the values. Domestic: the request went to the domestic relay
	// group (keep_home).
	Guard       []guard.Count  `json:"guard,omitempty"`
	GuardOutput map[string]int `json:"guard_output,omitempty"`
	Domestic    bool           `json:"domestic,omitempty"`
	// RequestBody and ResponseBody are set only with Config.Bodies, and
	// never for a request the guard blocked or kept at home: they hold
	// the values unmasked.
	RequestBody  string `json:"request_body,omitempty"`
	ResponseBody string `json:"response_body,omitempty"`
}

// Log is an open audit log. It is safe for concurrent use.
type Log struct {
	bodies bool
	mu     sync.Mutex
	w      io.WriteCloser
}

// Open opens (creating) the audit log.
func Open(cfg Config) *Log {
	if cfg.MaxSizeMB <= 0 {
		cfg.MaxSizeMB = 100
	}
	return &Log{bodies: cfg.Bodies, w: &lumberjack.Logger{Filename: cfg.Path, MaxSize: cfg.MaxSizeMB,
		MaxBackups: cfg.MaxBackups, MaxAge: cfg.MaxAgeDays, Compress: cfg.Compress, LocalTime: false}}
}

// Bodies reports whether bodies are recorded.
func (l *Log) Bodies() bool { return l != nil && l.bodies }

// Write appends e as one line. A nil Log writes nothing.
func (l *Log) Write(e *Entry) error {
	if l == nil {
		return nil
	}
	if !l.bodies {
		e.RequestBody, e.ResponseBody = "", ""
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err = l.w.Write(append(b, '\n'))
	return err
}

// Close closes the file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Close()
}
