package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
)

// cmdFunc is one subcommand: it gets its own arguments and the process's streams,
// so tests can run any subcommand in-process.
type cmdFunc func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error

// command is a row of the subcommand table.
type command struct {
	summary string
	run     cmdFunc
}

// commands is the subcommand table. Each domain adds its row here and keeps its
// implementation in cmd_<name>.go.
func commands() map[string]command {
	return map[string]command{
		"serve":  {"run the gateway server", cmdServe},
		"config": {"print every configuration key with its env variable", cmdConfigKeys},
		// --- geo ---
		"geo": {"locate CSV points in forests and zones, or triangulate camera bearings (JSON)", cmdGeo},
		// --- alerting ---
		"fwi": {"compute the FWI System and fire-danger level from daily CSV (stdin → stdout)", cmdFWI},
		// --- hotspots ---
		"hotspots": {"import NASA FIRMS hotspot files: hotspots import FILE... (progress on stderr, results as JSON lines)", cmdHotspots},
		// --- security ---
		"mosquitto-config": {"write Mosquitto password and ACL files from the registry and MQTT accounts", cmdMosquittoConfig},
		"dev-certs":        {"make a local CA, server and device certificates for TLS (dev/test only)", cmdDevCerts},
	}
}

// dispatch runs the named subcommand and returns the process exit code.
func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gateway: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	if err := c.run(ctx, args[1:], stdin, stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "gateway %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: gateway <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-18s %s\n", n, cmds[n].summary)
	}
}
