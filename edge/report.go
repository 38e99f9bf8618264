package edge

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/strait/strait/edge/store"
	"github.com/strait/strait/edge/usagedb"
)

// Report is the usage report the admin endpoint and the CLI print.
type Report struct {
	From  string        `json:"from"`
	To    string        `json:"to,omitempty"`
	Rows  []usagedb.Row `json:"rows"`
	Total usagedb.Row   `json:"total"`
}

// NewReport queries db (the bbolt file or a shared store) and sums the rows.
func NewReport(db store.Usage, f usagedb.Filter) (*Report, error) {
	rows, err := db.Query(f)
	if err != nil {
		return nil, err
	}
	r := &Report{From: f.From, To: f.To, Rows: rows}
	if r.Rows == nil {
		r.Rows = []usagedb.Row{}
	}
	for _, row := range rows {
		r.Total.Requests += row.Requests
		r.Total.Estimated += row.Estimated
		r.Total.Cached += row.Cached
		r.Total.Usage.Add(row.Usage)
		r.Total.Cost += row.Cost
	}
	return r, nil
}

// ReportFilter reads ?from=&to=&key=&model= ; from defaults to the first
// day of the current UTC month.
func ReportFilter(q map[string][]string, now time.Time) usagedb.Filter {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	f := usagedb.Filter{From: get("from"), To: get("to"), Client: get("key"), Model: get("model")}
	if f.From == "" {
		now = now.UTC()
		f.From = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format("2006-01-02")
	}
	return f
}

// UsageHandler serves the usage report as JSON (admin listener only: it
// names every key and what it spent).
func (e *Edge) UsageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if e.usage == nil {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"usage is not stored: set data_dir in the edge config"}` + "\n"))
			return
		}
		rep, err := NewReport(e.usage, ReportFilter(r.URL.Query(), e.policy.Now()))
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
}
