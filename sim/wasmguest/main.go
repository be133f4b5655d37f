// Command wasmguest is the simulation as a program: it runs one seed of
// sim.Run and prints the result. 'kelpie sim' builds it for GOOS=wasip1
// GOARCH=wasm and runs it under wazero (package sim/wasmhost), where the
// same arguments replay the same run exactly; it also builds and runs
// natively, without that guarantee.
//
// Usage:
//
//	wasmguest -seed N [-faults PROFILE] [-clients N] [-ops N]
//	          [-max-activations N] [-idle-timeout D] [-json]
//
// Without -json it prints the report of a failed run (sim.Result.Report)
// and then the result line "seed=N trace=HEX ops=N violations=N ..."; with -json it prints the
// sim.Result as one JSON object instead. The exit status is 1 if the run
// found a violation, 2 for bad arguments.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kelpie/kelpie/sim"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wasmguest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg sim.Config
	fs.Uint64Var(&cfg.Seed, "seed", 0, "the seed")
	faults := fs.String("faults", "none", "fault profile: a name or a comma-separated list")
	fs.IntVar(&cfg.Clients, "clients", 0, "concurrent clients (0: the simulation's default)")
	fs.IntVar(&cfg.Ops, "ops", 0, "operations to run (0: the simulation's default)")
	fs.IntVar(&cfg.MaxActivations, "max-activations", 0, "activation cap (0: the simulation's default)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 0, "actor idle timeout (0: the simulation's default)")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	profile, err := sim.ParseProfile(*faults)
	if err != nil {
		fmt.Fprintf(stderr, "wasmguest: %v\n", err)
		return 2
	}
	cfg.Faults = profile

	r := sim.Run(cfg)

	if *jsonOut {
		if err := json.NewEncoder(stdout).Encode(r); err != nil {
			fmt.Fprintf(stderr, "wasmguest: %v\n", err)
			return 2
		}
	} else {
		fmt.Fprint(stdout, r.Report())
		fmt.Fprintln(stdout, r.Line())
	}
	if len(r.Violations) > 0 {
		return 1
	}
	return 0
}
