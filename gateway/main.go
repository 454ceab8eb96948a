// Command gateway is the Lookout server and its batch tools: `gateway serve`
// runs the gateway; the other subcommands (geo, fwi, hotspots, …) are CLIs over
// the same packages. See `gateway help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
