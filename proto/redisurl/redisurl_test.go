package redisurl

import (
	"strings"
	"testing"
)

// TestParseErrorHidesCredentials: no part of a password or user name is in
// the error for a URL that does not parse; an error about a URL without
// credentials still says what is wrong.
func TestParseErrorHidesCredentials(t *testing.T) {
	for _, tc := range []struct{ url, secret string }{
		{"redis://:p%zzSECRET@127.0.0.1:6379", "SECRET"},     // '%' not followed by hex
		{"redis://:p%zzSECRET@127.0.0.1:6379", "%zz"},        // not even the escape
		{"redis://:SEC/RET@127.0.0.1:6379/0", "SEC"},         // '/' ends the authority early
		{"redis://:SEC#RET@127.0.0.1:6379", "SEC"},           // '#' starts a fragment
		{"redis://user:1234/5678@127.0.0.1:6379", "5678"},    // the rest reads as a database
		{"redis://user:SECRET@127.0.0.1:6379/db", "SECRET"},  // go-redis's own error
		{"redis://user:SECRET@127.0.0.1:6379?x=1", "SECRET"}, // likewise
		{"redis://alice:SECRET@127.0.0.1:6379/db", "alice"},  // the user name too
	} {
		_, err := Parse(tc.url)
		if err == nil {
			t.Fatalf("%s: parsed", tc.url)
		}
		if strings.Contains(err.Error(), tc.secret) {
			t.Errorf("%s: error %q shows %q", tc.url, err, tc.secret)
		}
	}
	if _, err := Parse("redis://127.0.0.1:6379/db"); err == nil || !strings.Contains(err.Error(), "database") {
		t.Errorf("no credentials: error %v, want it to name the bad database", err)
	}
	if o, err := Parse("redis://alice:s%40cret@127.0.0.1:6379/2"); err != nil || o.Password != "s@cret" || o.DB != 2 {
		t.Errorf("a good URL: %+v, %v", o, err)
	}
}
