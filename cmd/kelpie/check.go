package main

import (
	"context"
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
	"github.com/kelpie/kelpie/kv/postgres"
	"github.com/kelpie/kelpie/schema"
)

const checkUsage = `Usage: kelpie check --data-dir DIR
       kelpie check --storage postgres --postgres-url URL

Verifies a server's data: every value's own checksum, and every rule
between Kelpie's records (schema.Check: indexes, attachments, messages,
runs, ...); on Pebble, a stopped server's, offline, with every block
checksum of the storage engine and its ordering invariants; on Postgres,
one consistent snapshot of the database, while servers run (opening it
creates or migrates Kelpie's schema, as serve does). Prints what it checked
and each problem, naming the damaged key or file. Exit status 0 when
everything checks out, 1 when something is damaged or broken, 2 for bad
usage.

Flags:
`

// checkScanBatch is how many pairs the check reads at a time.
const checkScanBatch = 1024

func checkCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", env("KELPIE_DATA_DIR", defaultDataDir), "data directory of the server to check (env KELPIE_DATA_DIR)")
	storage := fs.String("storage", env("KELPIE_STORAGE", "pebble"), "storage engine of the data: pebble or postgres (env KELPIE_STORAGE)")
	postgresURL := fs.String("postgres-url", env("KELPIE_POSTGRES_URL", ""), "the database of --storage postgres (env KELPIE_POSTGRES_URL)")
	if code, ok := parseFlags(fs, checkUsage, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kelpie check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var ok bool
	var err error
	switch *storage {
	case "pebble":
		ok, err = checkDataDir(*dataDir, stdout)
	case "postgres":
		ok, err = checkPostgres(*postgresURL, stdout)
	default:
		fmt.Fprintf(stderr, "kelpie check: --storage %q: want pebble or postgres\n", *storage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "kelpie check: %v\n", err)
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

// checkDataDir checks the Pebble store in a stopped server's data
// directory.
func checkDataDir(dataDir string, w io.Writer) (ok bool, err error) {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return false, err
	}
	release, err := lockDataDir(dir)
	if err != nil {
		return false, err
	}
	defer release()
	return checkStore(filepath.Join(dir, "pebble"), w)
}

// checkPostgres checks the records in the Postgres database at url.
func checkPostgres(url string, w io.Writer) (ok bool, err error) {
	eng, err := openPostgres(context.Background(), url)
	if err != nil {
		return false, err
	}
	defer eng.Close()
	fmt.Fprintf(w, "storage engine: Postgres at %s, Kelpie schema version %d (Postgres verifies its own pages only if the cluster was initialised with data checksums)\n", redactURL(url), postgres.SchemaVersion)
	return checkRecords(eng, w), nil
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
	return checkRecords(eng, w) && ok, nil
}

// checkRecords reads every record of eng, in one snapshot, and checks each
// value's checksum and every rule between records; ok is false when it
// found a problem.
func checkRecords(eng kv.Engine, w io.Writer) (ok bool) {
	ok = true
	entries, damaged, err := readAll(eng)
	if err != nil {
		fmt.Fprintf(w, "reading the records stopped: %v\n", err)
		ok = false
	}
	for _, k := range damaged {
		fmt.Fprintf(w, "damaged value: key %q fails its checksum\n", k)
	}
	if v := layoutVersion(entries); v != strconv.Itoa(schema.Version) {
		fmt.Fprintf(w, "layout version %s, older than this kelpie's %d: kelpie serve upgrades it at start (until then the rules of the agent terms and counts and of the passages' word index and counts do not hold)\n", v, schema.Version)
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
	return ok
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
