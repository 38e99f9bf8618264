// Package redisurl parses the Redis URLs of the edge's shared store and the
// relay's conversation store without letting their credentials into errors.
//
// Both URLs take their password from the environment (${ENV} in the config)
// precisely to keep it out of files, yet net/url and go-redis quote the URL,
// or the piece they stumbled on, in their errors, and a password with a
// reserved character is that piece. Such an error is printed at start.
package redisurl

import (
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Parse is redis.ParseURL whose error, for a URL that may hold credentials
// (it has an '@'), shows no part of the URL; what names the setting is the
// caller's to add.
func Parse(raw string) (*redis.Options, error) {
	opts, err := redis.ParseURL(raw)
	switch {
	case err == nil:
		return opts, nil
	case !strings.Contains(raw, "@"):
		return nil, err
	}
	return nil, errors.New("not redis[s]://[user:password@]host:port[/db] (not shown: it holds credentials; " +
		"percent-encode % / # ? @ in the password)")
}
