package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

const restoreUsage = `Usage: kelpie restore --from DIR --data-dir NEW

Makes NEW a data directory holding the backup in DIR (written by 'kelpie
backup'), then checks it as 'kelpie check' does. NEW must not exist or be
empty: a restore never overwrites data. Start 'kelpie serve --data-dir NEW'
afterwards.

Flags:
`

func restoreCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "backup directory written by kelpie backup")
	dataDir := fs.String("data-dir", "", "data directory to create; must not exist or be empty")
	if code, ok := parseFlags(fs, restoreUsage, args); !ok {
		return code
	}
	if *from == "" || *dataDir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "kelpie restore: want --from DIR --data-dir NEW and no other arguments")
		return 2
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "kelpie restore: %v\n", err)
		return 2
	}
	if err := restore(*from, dir); err != nil {
		fmt.Fprintf(stderr, "kelpie restore: %v\n", err)
		return 1
	}
	ok, err := checkStore(filepath.Join(dir, "pebble"), stdout)
	if err != nil || !ok {
		fmt.Fprintf(stderr, "kelpie restore: the restored data in %s does not check out (%v); do not serve it\n", dir, err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s into %s\n", *from, dir)
	return 0
}

// restore copies the backup in from into the data dir dir, which it
// creates. The store is copied beside its final place and renamed into it
// once complete, so an interrupted restore leaves no store that looks whole.
func restore(from, dir string) error {
	var m backupManifest
	data, err := os.ReadFile(filepath.Join(from, backupManifestName))
	if err != nil {
		return fmt.Errorf("%s is not a complete backup (no %s): %w", from, backupManifestName, err)
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Format != backupFormat {
		return fmt.Errorf("%s: backup format %d (%v), this kelpie reads format %d", from, m.Format, err, backupFormat)
	}
	if err := emptyOrAbsent(dir); err != nil {
		return fmt.Errorf("refusing to restore into %w", err)
	}
	release, err := lockDataDir(dir)
	if err != nil {
		return err
	}
	defer release()
	partial := filepath.Join(dir, "pebble.partial")
	if err := copyTree(filepath.Join(from, "pebble"), partial); err != nil {
		return err
	}
	if err := os.Rename(partial, filepath.Join(dir, "pebble")); err != nil {
		return err
	}
	return syncDir(dir)
}

// copyTree copies the regular files and directories under src to dst,
// syncing each file.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			return copyFile(path, target)
		}
		return fmt.Errorf("%s: not a regular file or directory", path)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Sync(), out.Close())
}
