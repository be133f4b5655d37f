// Package lint holds the tests that keep the house in order: the layering
// of packages and the rule that only package clock reads the wall clock.
// `.ci/run` also runs gofmt, go vet and staticcheck.
package lint

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/kelpie/kelpie/"

// layers lists Kelpie's packages from the bottom up. A package imports only
// packages of lower layers: never one above it, nor one beside it. Data
// flows api → agent → agent/loop → ... → actor → kv.
var layers = [][]string{
	{"clock", "letta", "internal/netguard", "internal/jsonapi", "internal/warm"},
	{"kv", "llm", "embedding"},
	{"actor", "kv/pebble", "kv/postgres", "llm/providers"},
	{"schema", "kv/kvtest", "llm/llmtest"},
	{"agent/prompt", "agent/message", "agent/vecindex"},
	{"agent/memory", "agent/files"},
	{"agent/tool"},
	{"agent/window", "agent/memfs"},
	{"agent/loop", "sandbox", "mcpclient"},
	{"agent", "cluster"},
	{"api", "ui"},
	{"metrics", "tracing"},
	{"sim", "sim/wasmhost", "internal/kelpietest", "internal/mcptest"},
	{"sim/wasmguest", "cmd/kelpie", "kv/postgres/pgtest"},
}

// chosenInCmd are the concrete engines and model providers: only cmd/
// chooses them, so only it (and test support) may import them, and they
// alone import their vendors' modules.
var chosenInCmd = map[string][]string{
	"kv/pebble":     {"github.com/cockroachdb/pebble"},
	"kv/postgres":   {"github.com/jackc/"},
	"llm/providers": {"github.com/openai/", "github.com/anthropics/"},
	"sandbox":       {}, // runs processes: never in the simulation
	"mcpclient":     {"github.com/modelcontextprotocol/"},
	// Prometheus and OpenTelemetry stay out of the layers they observe:
	// those keep counters and hooks, which only metrics and tracing turn
	// into series and spans.
	"metrics": {"github.com/prometheus/"},
	"tracing": {"go.opentelemetry.io/"},
}

// testSupport packages serve tests (and cmd's benchmarks) only; no
// production package imports them, but for servesProgram.
var testSupport = []string{"kv/kvtest", "llm/llmtest", "internal/kelpietest", "kv/postgres/pgtest", "internal/mcptest"}

// servesProgram reports the one use of test support in the binary: 'kelpie
// load' starts the model double (llm/llmtest) as its model, so that turns
// can be load-tested without a provider, with the same wire-faithful
// double the tests use rather than a second one.
func servesProgram(importer, imported string) bool {
	return importer == "cmd/kelpie" && imported == "llm/llmtest"
}

// onlyImports lists, for packages with a narrower rule than their layer,
// every package of this module they may import. The API reaches storage,
// the runtime and the model only through the agent service, and classifies
// errors by the service's kinds.
var onlyImports = map[string][]string{
	"api":   {"agent", "letta", "clock"},
	"letta": {},
	"clock": {},
}

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"...")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	for dec := json.NewDecoder(&out); dec.More(); {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		p.ImportPath = strings.TrimPrefix(p.ImportPath, module)
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func layerOf(path string) int {
	for i, l := range layers {
		if slices.Contains(l, path) {
			return i
		}
	}
	return -1
}

// Spec: every package has a layer and imports only below it; the narrower
// rules hold; engines, model SDKs and test support are where they belong.
func TestForbiddenImports(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.ImportPath == "e2e" || p.ImportPath == "internal/lint" {
			continue // tests only
		}
		for _, err := range importProblems(p) {
			t.Error(err)
		}
	}
}

// importProblems returns what is wrong with p's imports.
func importProblems(p pkg) []string {
	var out []string
	at := layerOf(p.ImportPath)
	if at < 0 {
		return []string{p.ImportPath + " is in no layer: add it to layers in internal/lint"}
	}
	for _, imp := range p.Imports {
		if !strings.HasPrefix(imp, module) {
			for owner, vendors := range chosenInCmd {
				for _, v := range vendors {
					// Test support may use a vendor's module too: the tests'
					// MCP server is written with the SDK's server side.
					if strings.HasPrefix(imp, v) && p.ImportPath != owner && !slices.Contains(testSupport, p.ImportPath) {
						out = append(out, p.ImportPath+" imports "+imp+": only "+owner+" may")
					}
				}
			}
			continue
		}
		imp = strings.TrimPrefix(imp, module)
		if allowed, ok := onlyImports[p.ImportPath]; ok && !slices.Contains(allowed, imp) {
			out = append(out, p.ImportPath+" imports "+imp+": it may import only "+strings.Join(allowed, ", "))
		}
		if l := layerOf(imp); l >= at {
			out = append(out, p.ImportPath+" imports "+imp+", which is not in a lower layer")
		}
		if _, chosen := chosenInCmd[imp]; chosen && p.ImportPath != "cmd/kelpie" && !slices.Contains(testSupport, p.ImportPath) {
			out = append(out, p.ImportPath+" imports "+imp+": engines and providers are chosen in cmd/ only")
		}
		if slices.Contains(testSupport, imp) && !slices.Contains(testSupport, p.ImportPath) && !servesProgram(p.ImportPath, imp) {
			out = append(out, p.ImportPath+" imports "+imp+", which is for tests only")
		}
	}
	return out
}

// wallClockAllowed are the packages that may read the wall clock directly:
// clock itself; the simulator's driver, whose runtime clock the wasm host
// simulates; the model providers, clients of real networks that never run
// in the simulation; the tool sandbox and the MCP client, whose time limits
// are a real process's and a real connection's; host-side programs; and test support.
var wallClockAllowed = append([]string{"clock", "sim", "llm/providers", "sandbox", "mcpclient", "cmd/kelpie", "sim/wasmhost"}, testSupport...)

// Spec: nothing reads the wall clock but package clock, so the simulation
// can replace time everywhere.
func TestNoWallClock(t *testing.T) {
	for _, p := range listPackages(t) {
		if slices.Contains(wallClockAllowed, p.ImportPath) {
			continue
		}
		for _, f := range p.GoFiles {
			for _, use := range wallClockReads(t, filepath.Join(p.Dir, f)) {
				t.Errorf("%s reads the wall clock (%s); take a clock.Clock", use, p.ImportPath)
			}
		}
	}
}

func wallClockReads(t *testing.T, file string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	timeName := ""
	for _, imp := range f.Imports {
		if imp.Path.Value == `"time"` {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == timeName && timeName != "" {
			switch sel.Sel.Name {
			case "Now", "Since", "Until", "After", "Tick", "NewTimer", "NewTicker", "AfterFunc", "Sleep":
				out = append(out, fset.Position(sel.Pos()).String()+": time."+sel.Sel.Name)
			}
		}
		return true
	})
	return out
}

// Spec: the rule checks catch what they are for.
func TestImportRulesCatchViolations(t *testing.T) {
	cases := []struct {
		p    pkg
		want string
	}{
		{pkg{ImportPath: "kv", Imports: []string{module + "actor"}}, "not in a lower layer"},
		{pkg{ImportPath: "agent/memory", Imports: []string{module + "agent/tool"}}, "not in a lower layer"},
		{pkg{ImportPath: "api", Imports: []string{module + "kv"}}, "it may import only"},
		{pkg{ImportPath: "agent", Imports: []string{module + "kv/pebble"}}, "chosen in cmd/ only"},
		{pkg{ImportPath: "agent", Imports: []string{"github.com/openai/openai-go/v3"}}, "only llm/providers may"},
		{pkg{ImportPath: "sim", Imports: []string{module + "llm/llmtest"}}, "for tests only"},
		{pkg{ImportPath: "newpkg"}, "in no layer"},
	}
	for _, c := range cases {
		got := strings.Join(importProblems(c.p), "; ")
		if !strings.Contains(got, c.want) {
			t.Errorf("%s importing %v: got %q, want a problem containing %q", c.p.ImportPath, c.p.Imports, got, c.want)
		}
	}
}
