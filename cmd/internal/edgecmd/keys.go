package edgecmd

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/strait/strait/cmd/internal/cli"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/keystore"
	"github.com/strait/strait/proto/llmapi"
)

// keysCommand manages the keys file in the data directory, or the keys in
// Redis with store.redis. Running edges pick up every change within a
// second, without a restart.
func keysCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "keys",
		Usage: "create, list, disable, enable and remove client keys (stored hashed in data_dir, or in Redis with store.redis)",
		Subcommands: []*ucli.Command{
			{
				Name:      "create",
				Usage:     "create a key and print it once (only its SHA-256 is stored)",
				ArgsUsage: "NAME",
				Flags: append([]ucli.Flag{cli.ConfigFlag("STRAIT_EDGE_CONFIG"),
					&ucli.StringSliceFlag{Name: "model", Usage: "allowed model pattern, e.g. 'gpt-4o*' (repeatable; default: all)"},
					&ucli.StringSliceFlag{Name: "endpoint", Usage: "endpoint class allowed beyond inference: files, batches, fine_tuning, stored, assistants, media or all (repeatable; default: inference only)"},
					&ucli.DurationFlag{Name: "expires-in", Usage: "expire the key after this long, e.g. 720h"},
				}, limitFlags()...),
				Action: keysCreate,
			},
			{Name: "list", Usage: "list keys (names, prefixes, policy; never the keys)",
				Flags: []ucli.Flag{cli.ConfigFlag("STRAIT_EDGE_CONFIG")}, Action: keysList},
			keysSetCommand("disable", "disable a key (a running edge refuses it within a second)", func(r *keystore.Record) { r.Disabled = true }),
			keysSetCommand("enable", "enable a disabled key", func(r *keystore.Record) { r.Disabled = false }),
			{
				Name: "limits", Usage: "change a key's limits (flags not given keep their value)", ArgsUsage: "NAME",
				Flags: append([]ucli.Flag{cli.ConfigFlag("STRAIT_EDGE_CONFIG")}, limitFlags()...),
				Action: func(c *ucli.Context) error {
					if err := checkLimits(readLimits(c, auth.Limits{})); err != nil {
						return err
					}
					return keysUpdate(c, func(r *keystore.Record) { r.Limits = readLimits(c, r.Limits) })
				},
			},
			{
				Name: "remove", Usage: "delete a key", ArgsUsage: "NAME", Flags: []ucli.Flag{cli.ConfigFlag("STRAIT_EDGE_CONFIG")},
				Action: func(c *ucli.Context) error {
					_, reg, name, err := keysTarget(c)
					if err != nil {
						return err
					}
					defer reg.close()
					return reg.Remove(name)
				},
			},
		},
	}
}

func limitFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.Int64Flag{Name: "rpm", Usage: "requests per minute (0: unlimited)"},
		&ucli.Int64Flag{Name: "tpm", Usage: "tokens per minute (0: unlimited)"},
		&ucli.Int64Flag{Name: "daily-tokens", Usage: "tokens per UTC day (0: unlimited)"},
		&ucli.Int64Flag{Name: "monthly-tokens", Usage: "tokens per UTC month (0: unlimited)"},
		&ucli.Float64Flag{Name: "daily-budget", Usage: "USD per UTC day, from the config's prices (0: unlimited)"},
		&ucli.Float64Flag{Name: "monthly-budget", Usage: "USD per UTC month (0: unlimited)"},
	}
}

// readLimits overrides l with the limit flags that were given.
func readLimits(c *ucli.Context, l auth.Limits) auth.Limits {
	ints := map[string]*int64{"rpm": &l.RPM, "tpm": &l.TPM, "daily-tokens": &l.DailyTokens, "monthly-tokens": &l.MonthlyTokens}
	for name, p := range ints {
		if c.IsSet(name) {
			*p = c.Int64(name)
		}
	}
	floats := map[string]*float64{"daily-budget": &l.DailyBudget, "monthly-budget": &l.MonthlyBudget}
	for name, p := range floats {
		if c.IsSet(name) {
			*p = c.Float64(name)
		}
	}
	return l
}

// registry is an open key registry and its close function.
type registry struct {
	keystore.Registry
	close func() error
}

// keysTarget loads the config, opens its key registry and takes the key
// name argument. Close the registry when done.
func keysTarget(c *ucli.Context) (*File, registry, string, error) {
	if c.NArg() != 1 {
		return nil, registry{}, "", errors.New("give exactly one key name")
	}
	f, reg, err := openRegistry(c)
	return f, reg, c.Args().First(), err
}

// openRegistry loads the config and opens its key registry: Redis with
// store.redis, else the keys file in data_dir.
func openRegistry(c *ucli.Context) (*File, registry, error) {
	f, err := loadWithStore(c)
	if err != nil {
		return nil, registry{}, err
	}
	reg, closeReg, err := f.Registry()
	return f, registry{reg, closeReg}, err
}

// loadWithStore loads a config that keeps keys and usage somewhere the
// CLI can reach: data_dir or store.redis.
func loadWithStore(c *ucli.Context) (*File, error) {
	f, err := Load(c.String(cli.FlagConfig))
	if err != nil {
		return nil, err
	}
	if f.DataDir == "" && f.Store.Redis == nil {
		return nil, errors.New("the config has no data_dir nor store.redis: set one to manage keys and read usage from the command line")
	}
	return f, nil
}

func keysCreate(c *ucli.Context) error {
	f, reg, name, err := keysTarget(c)
	if err != nil {
		return err
	}
	defer reg.close()
	r := keystore.Record{Name: name, Models: c.StringSlice("model"), Endpoints: c.StringSlice("endpoint"), Limits: readLimits(c, auth.Limits{})}
	if err := checkEndpoints(r.Endpoints); err != nil {
		return err
	}
	if err := checkLimits(r.Limits); err != nil {
		return err
	}
	d := c.Duration("expires-in")
	if err := cli.NotNegative("--expires-in", d); err != nil {
		return err // zero is "never expires", and so was a slip of the sign
	}
	if d > 0 {
		r.Expires = time.Now().Add(d).UTC().Truncate(time.Second)
	}
	for _, k := range f.ClientKeys {
		if k.Name == name {
			return fmt.Errorf("the config's client_keys already has a key named %q", name)
		}
	}
	key, err := reg.Create(r)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s\n", key)
	fmt.Fprintf(c.App.ErrWriter, "key %q created; it is shown only this once (the edge keeps its SHA-256)\n", name)
	return nil
}

func keysSetCommand(name, usage string, change func(*keystore.Record)) *ucli.Command {
	return &ucli.Command{Name: name, Usage: usage, ArgsUsage: "NAME", Flags: []ucli.Flag{cli.ConfigFlag("STRAIT_EDGE_CONFIG")},
		Action: func(c *ucli.Context) error { return keysUpdate(c, change) }}
}

func keysUpdate(c *ucli.Context, change func(*keystore.Record)) error {
	_, reg, name, err := keysTarget(c)
	if err != nil {
		return err
	}
	defer reg.close()
	return reg.Update(name, change)
}

func keysList(c *ucli.Context) error {
	_, reg, err := openRegistry(c)
	if err != nil {
		return err
	}
	defer reg.close()
	kf, err := reg.Load()
	if err != nil {
		return err
	}
	printKeys(c.App.Writer, kf.Keys)
	return nil
}

func printKeys(out io.Writer, keys []keystore.Record) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tPREFIX\tSTATE\tEXPIRES\tMODELS\tENDPOINTS\tRPM\tTPM\tDAY TOKENS\tMONTH TOKENS\tDAY $\tMONTH $")
	for _, r := range keys {
		state, expires := "active", "never"
		if r.Disabled {
			state = "disabled"
		}
		if !r.Expires.IsZero() {
			expires = r.Expires.Format(time.RFC3339)
			if time.Now().After(r.Expires) {
				state = "expired"
			}
		}
		models := "*"
		if len(r.Models) > 0 {
			models = fmt.Sprint(r.Models)
		}
		l := r.Limits
		endpoints := strings.Join(append([]string{llmapi.EndpointInference}, r.Endpoints...), ",")
		fmt.Fprintf(w, "%s\t%s…\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.2f\t%.2f\n", r.Name, r.Prefix, state, expires, models,
			endpoints, l.RPM, l.TPM, l.DailyTokens, l.MonthlyTokens, l.DailyBudget, l.MonthlyBudget)
	}
	w.Flush()
}
