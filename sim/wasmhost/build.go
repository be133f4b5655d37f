package wasmhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ModulePath is the module the guest is built from.
const ModulePath = "github.com/kelpie/kelpie"

// GuestPackage is the guest program, relative to the module root.
const GuestPackage = "./sim/wasmguest"

// ErrNoSource means the working directory is not inside Kelpie's source
// tree, so the guest cannot be built.
var ErrNoSource = errors.New("not inside the Kelpie source tree (module " + ModulePath + ")")

// CacheDir is where built guests and compiled modules are kept:
// $KELPIE_SIM_CACHE, else the user's cache directory + "/kelpie".
func CacheDir() (string, error) {
	if d := os.Getenv("KELPIE_SIM_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set KELPIE_SIM_CACHE): %w", err)
	}
	return filepath.Join(d, "kelpie"), nil
}

// Build says what to build and where to keep it.
type Build struct {
	// Dir is a directory inside the module (the working directory if empty).
	Dir string
	// Package is the main package to build, relative to the module root
	// (GuestPackage if empty).
	Package string
	// CacheDir receives the built module (CacheDir() if empty).
	CacheDir string
	// Log, if set, is told when a build starts and how long it took.
	Log io.Writer
}

// BuildGuest returns the path of the guest built for GOOS=wasip1
// GOARCH=wasm from the module's current sources, building it with the
// local Go toolchain unless a build of the same sources is already cached.
// The cache key covers the Go version, the package, go.mod, go.sum and the
// source files of the module's packages that the guest is built from.
func BuildGuest(ctx context.Context, b Build) (string, error) {
	if b.Package == "" {
		b.Package = GuestPackage
	}
	if b.CacheDir == "" {
		d, err := CacheDir()
		if err != nil {
			return "", err
		}
		b.CacheDir = d
	}
	root, goVersion, err := moduleRoot(ctx, b.Dir)
	if err != nil {
		return "", err
	}
	sum, err := hashSources(ctx, root, b.Package)
	if err != nil {
		return "", err
	}
	key := sha256.New()
	fmt.Fprintf(key, "%s\n%s\n%s\n", goVersion, b.Package, sum)
	name := "kelpie-sim-" + hex.EncodeToString(key.Sum(nil))[:16] + ".wasm"
	out := filepath.Join(b.CacheDir, name)
	if _, err := os.Stat(out); err == nil {
		now := time.Now()
		os.Chtimes(out, now, now) // recently used: pruned last
		return out, nil
	}
	if err := os.MkdirAll(b.CacheDir, 0o755); err != nil {
		return "", err
	}
	// One build at a time per cache: processes started together (go test
	// runs packages in parallel) wait for the first one's build.
	unlock, err := lockFile(ctx, out+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	tmp, err := os.CreateTemp(b.CacheDir, name+".tmp*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if b.Log != nil {
		fmt.Fprintf(b.Log, "building the simulation for wasm (%s, %s)...\n", b.Package, goVersion)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", tmp.Name(), b.Package)
	cmd.Dir = root
	cmd.Env = wasmEnv()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s for GOOS=wasip1 GOARCH=wasm: %v\n%s", b.Package, err, stderr.Bytes())
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	if b.Log != nil {
		fmt.Fprintf(b.Log, "built %s in %v\n", out, time.Since(start).Round(time.Millisecond))
	}
	pruneBuilds(b.CacheDir, 3)
	return out, nil
}

// moduleRoot finds the root of the Kelpie module containing dir.
func moduleRoot(ctx context.Context, dir string) (root, goVersion string, err error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOMOD", "GOVERSION")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", "", fmt.Errorf("go env GOMOD: %v\n%s", err, ee.Stderr)
		}
		return "", "", fmt.Errorf("the Go toolchain is needed to build the simulation for wasm: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		return "", "", fmt.Errorf("go env GOMOD GOVERSION: unexpected output %q", out)
	}
	gomod, goVersion := strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
	if gomod == "" || gomod == os.DevNull {
		return "", "", ErrNoSource
	}
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", "", err
	}
	if modulePath(data) != ModulePath {
		return "", "", ErrNoSource
	}
	return filepath.Dir(gomod), goVersion, nil
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// wasmEnv is the environment of the go commands that build the guest.
func wasmEnv() []string {
	return append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
}

// listFiles is a 'go list' template that prints, one a line, the files that
// go into a build of each non-standard package.
const listFiles = `{{if not .Standard}}{{$d := .Dir}}` +
	`{{range .GoFiles}}{{$d}}{{"/"}}{{.}}{{"\n"}}{{end}}` +
	`{{range .EmbedFiles}}{{$d}}{{"/"}}{{.}}{{"\n"}}{{end}}{{end}}`

// hashSources hashes what a build of pkg reads from the module: go.mod,
// go.sum and the files of pkg and of every package of the module it
// imports, as 'go list' selects them for wasip1. Dependencies outside the
// module are pinned by go.sum.
func hashSources(ctx context.Context, root, pkg string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-f", listFiles, pkg)
	cmd.Dir = root
	cmd.Env = wasmEnv()
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go list %s: %v\n%s", pkg, err, ee.Stderr)
		}
		return "", err
	}
	files := []string{filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum")}
	for _, f := range strings.Split(string(out), "\n") {
		if rel, err := filepath.Rel(root, f); f != "" && err == nil && !strings.HasPrefix(rel, "..") {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil && !(errors.Is(err, fs.ErrNotExist) && filepath.Base(f) == "go.sum") {
			return "", err
		}
		rel, _ := filepath.Rel(root, f)
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// pruneBuilds keeps the keep most recently used guest builds in dir.
func pruneBuilds(dir string, keep int) {
	paths, _ := filepath.Glob(filepath.Join(dir, "kelpie-sim-*.wasm"))
	type build struct {
		path string
		used time.Time
	}
	var builds []build
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			builds = append(builds, build{p, fi.ModTime()})
		}
	}
	if len(builds) <= keep {
		return
	}
	sort.Slice(builds, func(i, j int) bool { return builds[i].used.After(builds[j].used) })
	for _, b := range builds[keep:] {
		os.Remove(b.path)
	}
}

// lockFile takes a lock by creating path exclusively, waiting while another
// live process holds it. A lock whose process has exited, or older than
// staleLock, is left over and taken over.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	const staleLock = 10 * time.Minute
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if lockIsStale(path, staleLock) {
			os.Remove(path)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func lockIsStale(path string, maxAge time.Duration) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false // gone already: try again
	}
	if time.Since(fi.ModTime()) > maxAge {
		return true
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		// Being written, or not ours: stale only when it stays that way.
		return time.Since(fi.ModTime()) > 10*time.Second
	}
	return !processAlive(pid)
}
