package actor_test

import (
	"strings"
	"testing"

	"github.com/kelpie/kelpie/actor"
)

func TestNewIDAccepts(t *testing.T) {
	for _, tc := range []struct{ ns, key string }{
		{"agents", "alice"},
		{"a", "b"},
		{"blocks_v2-x", "Zz09_-.:"},
		{"0123456789", "key.with:dots_and-dashes"},
		{strings.Repeat("n", actor.MaxNamespaceBytes), strings.Repeat("K", actor.MaxKeyBytes)},
	} {
		id, err := actor.NewID(tc.ns, tc.key)
		if err != nil {
			t.Errorf("NewID(%q, %q): %v", tc.ns, tc.key, err)
			continue
		}
		if id.Namespace != tc.ns || id.Key != tc.key {
			t.Errorf("NewID(%q, %q) = %+v", tc.ns, tc.key, id)
		}
		s := tc.ns + "/" + tc.key
		if id.String() != s {
			t.Errorf("String() = %q, want %q", id.String(), s)
		}
		back, err := actor.ParseID(s)
		if err != nil || back != id {
			t.Errorf("ParseID(%q) = %+v, %v; want %+v", s, back, err, id)
		}
	}
}

func TestNewIDRejects(t *testing.T) {
	for _, tc := range []struct {
		name, ns, key string
	}{
		{"empty namespace", "", "k"},
		{"empty key", "agents", ""},
		{"both empty", "", ""},
		{"namespace over limit", strings.Repeat("n", actor.MaxNamespaceBytes+1), "k"},
		{"key over limit", "agents", strings.Repeat("k", actor.MaxKeyBytes+1)},
		{"uppercase namespace", "Agents", "k"},
		{"dot in namespace", "a.b", "k"},
		{"colon in namespace", "a:b", "k"},
		{"slash in namespace", "a/b", "k"},
		{"slash in key", "agents", "a/b"},
		{"space in key", "agents", "a b"},
		{"NUL in key", "agents", "a\x00"},
		{"non-ASCII key", "agents", "café"},
		{"high byte namespace", "\xff", "k"},
		{"newline key", "agents", "k\n"},
	} {
		if id, err := actor.NewID(tc.ns, tc.key); err == nil {
			t.Errorf("%s: NewID(%q, %q) = %+v, want error", tc.name, tc.ns, tc.key, id)
		}
	}
}

func TestParseIDRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"agents",             // missing slash
		"agentsalice",        // missing slash
		"/alice",             // empty namespace
		"agents/",            // empty key
		"/",                  // both empty
		"agents/alice/extra", // slash in key
		"agents//alice",      // slash in key
		"Agents/alice",       // bad namespace byte
		"agents/al ice",      // bad key byte
		"agents/\x00",        // bad key byte
		strings.Repeat("n", actor.MaxNamespaceBytes+1) + "/k",
		"agents/" + strings.Repeat("k", actor.MaxKeyBytes+1),
		strings.Repeat("x", 10_000), // huge, no slash
	} {
		if id, err := actor.ParseID(s); err == nil {
			t.Errorf("ParseID(%q) = %+v, want error", s, id)
		} else if id != (actor.ID{}) {
			t.Errorf("ParseID(%q) returned %+v with its error, want the zero ID", s, id)
		} else if len(err.Error()) > 400 {
			t.Errorf("ParseID error for a %d-byte input is %d bytes long; want it truncated", len(s), len(err.Error()))
		}
	}
}

// FuzzParseID: ParseID never panics, and every id it accepts round-trips
// through String and is accepted by NewID. The seed corpus is also under
// testdata/fuzz/FuzzParseID.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		"agents/alice",
		"a/b",
		"blocks/Zz09_-.:",
		"",
		"/",
		"agents",
		"agents/",
		"/alice",
		"agents/a/b",
		"Agents/x",
		"agents/\xff",
		strings.Repeat("n", actor.MaxNamespaceBytes) + "/" + strings.Repeat("k", actor.MaxKeyBytes),
		strings.Repeat("n", actor.MaxNamespaceBytes+1) + "/k",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := actor.ParseID(s)
		if err != nil {
			if id != (actor.ID{}) {
				t.Fatalf("ParseID(%q) = %+v with error %v; want the zero ID", s, id, err)
			}
			return
		}
		if got := id.String(); got != s {
			t.Fatalf("ParseID(%q).String() = %q", s, got)
		}
		back, err := actor.ParseID(id.String())
		if err != nil || back != id {
			t.Fatalf("ParseID(String()) = %+v, %v; want %+v", back, err, id)
		}
		if again, err := actor.NewID(id.Namespace, id.Key); err != nil || again != id {
			t.Fatalf("NewID(%q, %q) = %+v, %v; want %+v", id.Namespace, id.Key, again, err, id)
		}
		if id.Namespace == "" || id.Key == "" ||
			len(id.Namespace) > actor.MaxNamespaceBytes || len(id.Key) > actor.MaxKeyBytes ||
			strings.Contains(id.Key, "/") {
			t.Fatalf("ParseID(%q) accepted an out-of-spec id %+v", s, id)
		}
	})
}
