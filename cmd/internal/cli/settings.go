package cli

import (
	"fmt"
	"time"
)

// NotNegative refuses a negative duration or size, naming its YAML key (or
// flag); it returns nil otherwise, so a config's validate can collect
// several in one errors.Join. Zero means "the default" throughout both
// configs, and the code below reads anything not above zero the same way,
// so a slip of the sign would run with the default without a word.
func NotNegative[T int | int64 | time.Duration](key string, v T) error {
	if v < 0 {
		return fmt.Errorf("%s %v: at least 0 (0: the default)", key, v)
	}
	return nil
}
