// Command strait-relay is the overseas end of Strait. See README.md.
package main

import (
	"fmt"
	"os"

	"github.com/strait/strait/cmd/internal/relaycmd"
)

func main() {
	if err := relaycmd.App().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "strait-relay:", err)
		os.Exit(1)
	}
}
