package edgecmd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/cmd/internal/cli"
	"github.com/strait/strait/edge/keystore"
	"github.com/strait/strait/edge/store/redisstore"
)

// StoreFile chooses where rate limits, quotas, usage and the keys that
// "strait-edge keys" manages live. Empty: in this edge (memory and
// data_dir). With redis, in Redis, shared by every edge that names it.
type StoreFile struct {
	Redis *RedisFile `yaml:"redis"`
}

// RedisFile configures the shared Redis store.
type RedisFile struct {
	// URL is redis://host:port[/db] or rediss:// (TLS). Addrs instead
	// lists Redis Cluster nodes, or Sentinels with MasterName.
	URL        string   `yaml:"url"`
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Username   string   `yaml:"username"`
	// Password may be a ${ENV} reference (keep it out of the file).
	Password string       `yaml:"password"`
	TLS      RedisTLSFile `yaml:"tls"`
	// Timeout bounds each Redis call on the request path (zero: 5ms).
	Timeout time.Duration `yaml:"timeout"`
	// OnFailure is fail_open (the default: admit on local limits, each
	// divided by Edges, while Redis is away) or fail_closed (refuse with
	// 503 and Retry-After).
	OnFailure string `yaml:"on_failure"`
	// Edges is how many edges share the store, to size fail_open's local
	// limits (zero: 1).
	Edges int `yaml:"edges"`
	// Prefix starts every key (zero: "strait:"), to share one Redis
	// between deployments.
	Prefix string `yaml:"prefix"`
}

// RedisTLSFile configures TLS to Redis; a rediss:// URL turns it on too.
type RedisTLSFile struct {
	Enabled bool `yaml:"enabled"`
	// CA verifies the server (empty: the system roots); Cert and Key are
	// a client certificate, for servers that ask for one.
	CA         string `yaml:"ca"`
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	ServerName string `yaml:"server_name"`
}

func (r *RedisFile) validate() []error {
	var errs []error
	if (r.URL == "") == (len(r.Addrs) == 0) {
		errs = append(errs, errors.New("store.redis: give url or addrs (one of them)"))
	}
	switch r.OnFailure {
	case "", "fail_open", "fail_closed":
	default:
		errs = append(errs, fmt.Errorf("store.redis.on_failure %q: want fail_open or fail_closed", r.OnFailure))
	}
	if r.Timeout < 0 || r.Edges < 0 {
		errs = append(errs, errors.New("store.redis: timeout and edges must not be negative"))
	}
	if (r.TLS.Cert == "") != (r.TLS.Key == "") {
		errs = append(errs, errors.New("store.redis.tls: cert and key go together"))
	}
	return errs
}

// config resolves the password and loads the TLS files.
func (r *RedisFile) config(log *zap.Logger) (redisstore.Config, error) {
	var pw string
	if r.Password != "" { // none: the URL's, or no AUTH
		var err error
		if pw, err = cli.ExpandSecret(r.Password); err != nil {
			return redisstore.Config{}, fmt.Errorf("store.redis.password: %w", err)
		}
	}
	c := redisstore.Config{URL: r.URL, Addrs: r.Addrs, MasterName: r.MasterName, Username: r.Username, Password: pw,
		Timeout: r.Timeout, FailOpen: r.OnFailure != "fail_closed", Edges: r.Edges, Prefix: r.Prefix, Logger: log}
	t := r.TLS
	if t.Enabled || t.CA != "" || t.Cert != "" || t.ServerName != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
		if t.CA != "" {
			var err error
			if tc.RootCAs, err = certs.LoadPool(t.CA); err != nil {
				return c, fmt.Errorf("store.redis.tls.ca: %w", err)
			}
		}
		if t.Cert != "" {
			kp, err := tls.LoadX509KeyPair(t.Cert, t.Key)
			if err != nil {
				return c, fmt.Errorf("store.redis.tls: %w", err)
			}
			tc.Certificates = []tls.Certificate{kp}
		}
		c.TLS = tc
	}
	return c, nil
}

// Registry is where the CLI-managed keys live: Redis with store.redis,
// else the keys file in data_dir; nil without either. Close it with the
// returned function.
func (f *File) Registry() (keystore.Registry, func() error, error) {
	none := func() error { return nil }
	switch {
	case f.Store.Redis != nil:
		c, err := f.Store.Redis.config(nil)
		if err != nil {
			return nil, none, err
		}
		k, err := redisstore.OpenKeys(c)
		if err != nil {
			return nil, none, err
		}
		return k, k.Close, nil
	case f.DataDir != "":
		return keystore.FileRegistry{Path: f.KeysPath(), Poll: keysPoll}, none, nil
	}
	return nil, none, nil
}

// keysPoll is how often the CLI's registry polls a keys file (the edge
// watches its own through edge.Server).
const keysPoll = 500 * time.Millisecond

// openShared opens the Redis store when store.redis is set, and returns
// the key registry: the store's, else the keys file's (nil without
// data_dir).
func (f *File) openShared(log *zap.Logger) (*redisstore.Store, keystore.Registry, error) {
	r := f.Store.Redis
	if r == nil {
		reg, _, err := f.Registry() // a file registry: nothing to close
		return nil, reg, err
	}
	c, err := r.config(log)
	if err != nil {
		return nil, nil, err
	}
	rs, err := redisstore.New(c)
	if err != nil {
		return nil, nil, err
	}
	return rs, rs.Keys(), nil
}
