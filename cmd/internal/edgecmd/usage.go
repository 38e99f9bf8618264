package edgecmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/strait/strait/cmd/internal/cli"
	"github.com/strait/strait/edge"
	"github.com/strait/strait/edge/store/redisstore"
	"github.com/strait/strait/edge/usagedb"
)

// usageCommand prints usage per key, model and day: from a running edge's
// admin endpoint when there is one (the store is locked while the edge
// runs), else from the store directly.
func usageCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "usage",
		Usage: "report token usage and spend per key, model and day",
		Flags: []ucli.Flag{cli.ConfigFlag("STRAIT_EDGE_CONFIG"),
			&ucli.StringFlag{Name: "from", Usage: "first day, 2006-01-02 (default: first day of this month, UTC)"},
			&ucli.StringFlag{Name: "to", Usage: "last day, 2006-01-02 (default: no end)"},
			&ucli.StringFlag{Name: "key", Usage: "only this key name"},
			&ucli.StringFlag{Name: "model", Usage: "only this model"},
			&ucli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"},
		},
		Action: func(c *ucli.Context) error {
			f, err := loadWithStore(c)
			if err != nil {
				return err
			}
			q := url.Values{}
			for _, k := range []string{"from", "to", "key", "model"} {
				if v := c.String(k); v != "" {
					q.Set(k, v)
				}
			}
			rep, err := fetchReport(f, q)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printReport(c.App.Writer, rep)
			return nil
		},
	}
}

func fetchReport(f *File, q url.Values) (*edge.Report, error) {
	if addr := f.adminListen(); addr != "" {
		rep, err := fetchFromAdmin(addr, q)
		if err == nil {
			return rep, nil
		}
		var op *net.OpError
		if !errors.As(err, &op) { // the edge answered, badly: say so
			return nil, err
		}
	}
	if r := f.Store.Redis; r != nil { // every edge's usage is in Redis: read it there
		c, err := r.config(nil)
		if err != nil {
			return nil, err
		}
		rs, err := redisstore.NewReader(c)
		if err != nil {
			return nil, err
		}
		defer rs.Close()
		return edge.NewReport(rs, edge.ReportFilter(q, time.Now()))
	}
	db, err := usagedb.Open(f.UsagePath(), time.Second, nil)
	if err != nil {
		return nil, fmt.Errorf("%w (a running edge locks the store: set admin_listen to read usage from it)", err)
	}
	defer db.Close()
	return edge.NewReport(db, edge.ReportFilter(q, time.Now()))
}

func fetchFromAdmin(addr string, q url.Values) (*edge.Report, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + net.JoinHostPort(host, port) + "/usage?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("edge admin /usage: %s: %s", resp.Status, b)
	}
	var rep edge.Report
	return &rep, json.NewDecoder(resp.Body).Decode(&rep)
}

func printReport(out io.Writer, rep *edge.Report) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "DAY\tKEY\tMODEL\tREQUESTS\tESTIMATED\tCACHED\tINPUT\tCACHE READ\tCACHE WRITE\tOUTPUT\tREASONING\tUSD\t")
	row := func(r usagedb.Row) {
		u := r.Usage
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.4f\t\n", r.Day, r.Client, r.Model, r.Requests, r.Estimated, r.Cached,
			u.Input, u.CacheRead, u.CacheWrite, u.Output, u.Reasoning, r.Cost)
	}
	for _, r := range rep.Rows {
		row(r)
	}
	total := rep.Total
	total.Day, total.Client, total.Model = "total", "", ""
	row(total)
	w.Flush()
}
