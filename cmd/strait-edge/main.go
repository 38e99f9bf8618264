// Command strait-edge is the domestic end of Strait. See README.md.
package main

import (
	"fmt"
	"os"

	"github.com/strait/strait/cmd/internal/edgecmd"
)

func main() {
	if err := edgecmd.App().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "strait-edge:", err)
		os.Exit(1)
	}
}
