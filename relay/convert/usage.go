package convert

import "time"

// now stamps "created" fields; tests replace it for stable output.
var now = time.Now
