package wasmhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// writeModule lays out a tiny module posing as Kelpie: a guest that
// imports one package of the module, and a package it does not import.
func writeModule(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, text := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestBuildGuestCachesBySources(t *testing.T) {
	ctx := context.Background()
	root := writeModule(t, map[string]string{
		"go.mod":           "module " + ModulePath + "\n\ngo 1.22\n",
		"guest/main.go":    "package main\n\nimport \"" + ModulePath + "/dep\"\n\nfunc main() { println(dep.X) }\n",
		"dep/dep.go":       "package dep\n\nconst X = 1\n",
		"other/other.go":   "package other\n",
		"guest/x_test.go":  "package main\n",
		"testdata/junk.go": "package junk\n",
	})
	cache := t.TempDir()
	b := Build{Dir: filepath.Join(root, "dep"), Package: "./guest", CacheDir: cache}
	first, err := BuildGuest(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first); err != nil {
		t.Fatal(err)
	}
	// Files the guest is not built from do not matter...
	for f, text := range map[string]string{
		"other/other.go":   "package other\n\nconst Y = 2\n",
		"guest/x_test.go":  "package main\n\nconst Z = 3\n",
		"testdata/junk.go": "package junk\n\nconst W = 4\n",
	} {
		os.WriteFile(filepath.Join(root, f), []byte(text), 0o644)
	}
	if again, err := BuildGuest(ctx, b); err != nil || again != first {
		t.Errorf("after unrelated changes: %s, %v; want the cached %s", again, err, first)
	}
	// ...but a change to a package it imports rebuilds it.
	os.WriteFile(filepath.Join(root, "dep/dep.go"), []byte("package dep\n\nconst X = 2\n"), 0o644)
	second, err := BuildGuest(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Errorf("a change to the guest's dependency did not rebuild it")
	}
	// Outside the module, there is nothing to build from.
	other := writeModule(t, map[string]string{"go.mod": "module example.com/other\n\ngo 1.22\n"})
	if _, err := BuildGuest(ctx, Build{Dir: other, CacheDir: cache}); !errors.Is(err, ErrNoSource) {
		t.Errorf("outside Kelpie's module: %v, want ErrNoSource", err)
	}
}

func TestLockFileTakesOverStaleLocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	// A lock held by a live process (this one) makes others wait.
	os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("took a live lock: %v", err)
	}
	// One left by a process that has exited is taken over.
	os.WriteFile(path, []byte("999999999\n"), 0o644)
	unlock, err := lockFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unlock left %s: %v", path, err)
	}
}
