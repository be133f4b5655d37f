package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/pebble"
	"github.com/kelpie/kelpie/schema"
)

const checkUsage = `Usage: kelpie check --data-dir DIR

Verifies a stopped server's data offline: every block checksum of the
storage engine and its ordering invariants, every value's own checksum, and
every rule between Kelpie's records (schema.Check: indexes, attachments,
messages, runs, ...). Prints what it checked and each problem, naming the
damaged key or file. Exit status 0 when everything checks out, 1 when
something is damaged or broken, 2 for bad usage.

Flags:
`

// checkScanBatch is how many pairs the check reads at a time.
const checkScanBatch = 1024

func checkCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", env("KELPIE_DATA_DIR", defaultDataDir), "data directory of the server to check (env KELPIE_DATA_DIR)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), checkUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kelpie check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "kelpie check: %v\n", err)
		return 2
	}
	release, err := lockDataDir(dir)
	if err != nil {
		fmt.Fprintf(stderr, "kelpie check: %v\n", err)
		return 1
	}
	defer release()
	ok, err := checkStore(filepath.Join(dir, "pebble"), stdout)
	if err != nil {
		fmt.Fprintf(stderr, "kelpie check: %v\n", err)
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

// checkStore checks the Pebble store at dir and reports to w; ok is false
// when it found a problem.
func checkStore(dir string, w io.Writer) (ok bool, err error) {
	eng, err := pebble.Open(dir, pebble.Options{ReadOnly: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return false, err
	}
	defer eng.Close()
	ok = true
	if loss := eng.Loss(); loss != nil {
		fmt.Fprintf(w, "lost writes: %v\n", loss)
		ok = false
	}
	points, err := eng.CheckLevels()
	if err != nil {
		fmt.Fprintf(w, "damaged storage: %v\n", err)
		ok = false
	} else {
		fmt.Fprintf(w, "storage engine: %d keys read, every block checksum and ordering invariant holds\n", points)
	}
	entries, damaged, err := readAll(eng)
	if err != nil {
		fmt.Fprintf(w, "reading the records stopped: %v\n", err)
		ok = false
	}
	for _, k := range damaged {
		fmt.Fprintf(w, "damaged value: key %q fails its checksum\n", k)
	}
	if v := layoutVersion(entries); v != strconv.Itoa(schema.Version) {
		fmt.Fprintf(w, "layout version %s, older than this kelpie's %d: kelpie serve upgrades it at start (until then the rules of the agent terms and counts do not hold)\n", v, schema.Version)
	}
	rep := schema.Check(entries)
	fmt.Fprintf(w, "records: %d keys, %d damaged; by family:", len(entries), len(damaged))
	for _, name := range slices.Sorted(maps.Keys(rep.Keys)) {
		fmt.Fprintf(w, " %s=%d", name, rep.Keys[name])
	}
	fmt.Fprintln(w)
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "broken rule: %s\n", p.Message)
	}
	ok = ok && len(damaged) == 0 && len(rep.Problems) == 0
	if ok {
		fmt.Fprintln(w, "ok: nothing damaged, every rule holds")
	}
	return ok, nil
}

// layoutVersion is the layout version the entries record ("1": none).
func layoutVersion(entries []schema.Entry) string {
	i, found := slices.BinarySearchFunc(entries, schema.VersionKey, func(e schema.Entry, k string) int { return strings.Compare(string(e.Key), k) })
	if !found {
		return "1"
	}
	return string(entries[i].Value)
}

// readAll reads every pair, unsealing each value; damaged lists the keys
// whose value fails its checksum.
func readAll(eng kv.Engine) (entries []schema.Entry, damaged []string, err error) {
	snap, err := eng.NewSnapshot()
	if err != nil {
		return nil, nil, err
	}
	defer snap.Close()
	r := kv.Range{Start: []byte{0}}
	for {
		kvs, err := snap.Scan(r, checkScanBatch, false)
		if err != nil {
			return entries, damaged, err
		}
		for _, p := range kvs {
			v, uerr := kv.Unseal(p.Key, p.Value)
			if uerr != nil {
				damaged = append(damaged, string(p.Key))
			}
			entries = append(entries, schema.Entry{Key: p.Key, Value: v, Damaged: uerr != nil})
		}
		if len(kvs) < checkScanBatch {
			return entries, damaged, nil
		}
		r.Start = append(kvs[len(kvs)-1].Key, 0)
	}
}
