// Command kelpie runs the Kelpie agent server.
//
// It is the only place that chooses concrete storage engines and wires the
// layers together: api → agent → actor → kv.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kelpie/kelpie/api"
)

const usage = `Kelpie is a Letta-compatible server for stateful AI agents, built on a
virtual-actor runtime with durable, transactional storage.

Usage:
  kelpie <command> [flags]

Commands:
  serve     run the HTTP API server (embedded Pebble storage by default)
  sim       run the deterministic simulation: one seed, or a sweep of many
  check     verify a stopped server's data offline: checksums and record rules
  backup    write a consistent copy of a data dir, online (through the running server) or not
  restore   make a new data dir from a backup, and check it
  load      drive a server (or one started in-process) with a mix of calls and report latency
  version   print Kelpie's version and the Letta API version it serves
            (also: kelpie --version)

Run 'kelpie <command> --help' for a command's flags.
`

// version is Kelpie's own version, reported by 'kelpie version' and by GET
// /v1/health/ as kelpie_version (its "version" is api.LettaAPIVersion).
const version = "0.1.0"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "sim":
		return simCommand(args[1:], stdout, stderr)
	case "check":
		return checkCommand(args[1:], stdout, stderr)
	case "backup":
		return backupCommand(args[1:], stdout, stderr)
	case "restore":
		return restoreCommand(args[1:], stdout, stderr)
	case "load":
		return loadCommand(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "kelpie %s (Letta API %s)\n", version, api.LettaAPIVersion)
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "kelpie: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// parseFlags parses a command's flags, with usage above their defaults as
// its help. When ok is false the command ends with code: 0 after --help, 2
// after bad flags (the flag package has said why).
func parseFlags(fs *flag.FlagSet, usage string, args []string) (code int, ok bool) {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}
