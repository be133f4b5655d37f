package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv/pebble"
)

// A backup is a directory holding a Pebble checkpoint (pebble/) and, written
// last, a manifest: a directory without the manifest is an unfinished
// backup, and restore refuses it.
const (
	backupManifestName = "KELPIE-BACKUP.json"
	backupFormat       = 1
	// adminSocketName is the server's admin socket in its data dir. Only
	// the data dir's owner can reach it (mode 0600), which is what lets
	// 'kelpie backup --data-dir D' ask the server holding D for a
	// checkpoint without an API key or a network listener.
	adminSocketName = "kelpie.sock"
	// maxSocketPath is the longest unix socket path Linux takes.
	maxSocketPath = 107
	// backupTimeout bounds one backup request to the server.
	backupTimeout = 30 * time.Minute
)

type backupManifest struct {
	Format        int       `json:"format"`
	KelpieVersion string    `json:"kelpie_version"`
	CreatedAt     time.Time `json:"created_at"`
}

const backupUsage = `Usage: kelpie backup --data-dir D --to DIR

Writes a consistent copy of the data in D to DIR, which must not exist or be
empty: every write acknowledged before the backup began is in it. While a
server runs on D, the backup is taken by that server (through its admin
socket D/kelpie.sock, which only D's owner can use) and it goes on serving;
otherwise D is opened directly. Table files are hard-linked when DIR is on
the same file system as D, so a backup there is quick and small; copy DIR
elsewhere to keep it safe from the disk. Restore with 'kelpie restore'.

Flags:
`

func backupCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", env("KELPIE_DATA_DIR", defaultDataDir), "data directory to back up (env KELPIE_DATA_DIR)")
	to := fs.String("to", "", "directory to write the backup to; must not exist or be empty")
	if code, ok := parseFlags(fs, backupUsage, args); !ok {
		return code
	}
	if *to == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "kelpie backup: want --data-dir D --to DIR and no other arguments")
		return 2
	}
	dir, err1 := filepath.Abs(*dataDir)
	target, err2 := filepath.Abs(*to)
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintf(stderr, "kelpie backup: %v\n", err)
		return 2
	}
	how, err := backup(dir, target)
	if err != nil {
		fmt.Fprintf(stderr, "kelpie backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "backed up %s to %s (%s)\n", dir, target, how)
	return 0
}

// backup backs up the data dir to target, through the server running on
// it or, when none is, directly; how says which.
func backup(dir, target string) (how string, err error) {
	if err := emptyOrAbsent(target); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "pebble")); err != nil {
		return "", fmt.Errorf("no Kelpie data in %s: %w", dir, err)
	}
	release, err := lockDataDir(dir)
	if err == nil {
		defer release()
		eng, err := pebble.Open(filepath.Join(dir, "pebble"), pebble.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return "", err
		}
		err = writeBackup(eng, target)
		return "no server was running: read directly", errors.Join(err, eng.Close())
	}
	if inUse := (*dataDirInUse)(nil); !errors.As(err, &inUse) {
		return "", err
	}
	return "taken by the running server", askServerForBackup(dir, target)
}

// emptyOrAbsent refuses a directory with anything in it.
func emptyOrAbsent(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	return nil
}

// writeBackup checkpoints eng into target and writes the manifest last.
func writeBackup(eng *pebble.Engine, target string) error {
	if err := emptyOrAbsent(target); err != nil {
		return err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if err := eng.Checkpoint(filepath.Join(target, "pebble")); err != nil {
		return err
	}
	m, err := json.Marshal(backupManifest{Format: backupFormat, KelpieVersion: version, CreatedAt: clock.Real{}.Now().UTC()})
	if err != nil {
		return err
	}
	return writeFileSynced(filepath.Join(target, backupManifestName), m)
}

// writeFileSynced writes a file and syncs it and its directory.
func writeFileSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// askServerForBackup asks the server holding dir, on its admin socket, to
// back up to target.
func askServerForBackup(dir, target string) error {
	sock := filepath.Join(dir, adminSocketName)
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), backupTimeout)
	defer cancel()
	body, err := json.Marshal(map[string]string{"to": target})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", "http://kelpie/backup", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("data dir %s is in use by pid %s, and its admin socket %s did not answer: %w", dir, holder(filepath.Join(dir, "kelpie.lock")), sock, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the server on %s: %s", dir, msg)
	}
	return nil
}

// adminServer serves the admin socket of a server on Pebble: POST /backup
// {"to": DIR} writes a backup of the live store.
type adminServer struct {
	eng *pebble.Engine
	log *slog.Logger
}

func (a adminServer) backup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		To string `json:"to"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || !filepath.IsAbs(req.To) {
		http.Error(w, "want {\"to\": an absolute directory}", http.StatusBadRequest)
		return
	}
	if err := writeBackup(a.eng, req.To); err != nil {
		a.log.Error("backup failed", "to", req.To, "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	a.log.Info("backup written", "to", req.To)
}

// serveAdmin listens on the admin socket in dir until stop is called. A
// data dir whose socket path is too long for the kernel gets no socket (and
// no online backups): the log says so.
func serveAdmin(dir string, eng *pebble.Engine, log *slog.Logger) (stop func(), err error) {
	sock := filepath.Join(dir, adminSocketName)
	if len(sock) > maxSocketPath {
		log.Warn("data dir path too long for an admin socket: kelpie backup cannot reach this server", "socket", sock)
		return func() {}, nil
	}
	// A socket left by a server that died is stale: this process holds
	// the data dir's lock, so no other server uses it.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /backup", adminServer{eng, log}.backup)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: headerReadTimeout}
	go srv.Serve(ln)
	return func() {
		srv.Shutdown(context.Background())
		os.Remove(sock)
	}, nil
}
