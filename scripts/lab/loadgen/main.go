// Command loadgen fires a bounded number of requests at an OpenAI-compatible
// base URL (a Strait edge, an nginx, or the fake provider itself) and
// reports time to first token, total time, completed requests per second and
// errors by cause, as one JSON line per run plus a readable table.
//
//	loadgen run --url https://127.0.0.1:9443 --ca ca.pem --key sk-… \
//	    --mode fresh --kind stream --concurrency 32 --requests 64 --label contender=strait-ws
//	loadgen table results.jsonl          # the runs as a text table
//	loadgen markdown results.jsonl       # the same as Markdown tables, for the README
//	loadgen pivot --mode fresh --conc 256 results.jsonl   # TTFT p50/p99, link × contender
//
// Modes: "fresh" opens a new TCP+TLS connection for every request (as many
// real clients do); "keepalive" reuses connections. Kinds: "stream" (SSE chat
// completion), "unary" (non-streaming chat completion) and "bulk" (one large
// embeddings response). Every run is bounded by --requests and --duration.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(os.Args[2:])
	case "table":
		err = cmdTable(os.Args[2:], false)
	case "markdown":
		err = cmdTable(os.Args[2:], true)
	case "pivot":
		err = cmdPivot(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loadgen run [flags] | table FILE... | markdown FILE... | pivot [flags] FILE...")
	os.Exit(2)
}
