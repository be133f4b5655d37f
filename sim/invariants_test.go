package sim

import (
	"strings"
	"testing"

	"github.com/kelpie/kelpie/schema"
)

// Spec: a storage check that saw no key of a family the audit shows must
// exist is a violation, not a pass: a rule that matched nothing checked
// nothing.
func TestCheckFamiliesSeen(t *testing.T) {
	a := &audit{
		agents: map[string]*agentAudit{"agent-1": {status: 200, hist: []msgJSON{{}}}},
		blocks: map[string]*blockAudit{},
	}
	all := map[string]int{}
	for _, f := range schema.Families {
		all[f.Name] = 1
	}
	s := newSystem(Config{}.withDefaults())
	s.checkFamiliesSeen(schema.Report{Keys: all}, a)
	if len(s.online) != 0 {
		t.Fatalf("every family seen, yet: %+v", s.online)
	}
	delete(all, schema.Messages.Name)
	s.checkFamiliesSeen(schema.Report{Keys: all}, a)
	if len(s.online) != 1 || !strings.Contains(s.online[0].msg, "no key of family message") {
		t.Fatalf("messages unseen: %+v", s.online)
	}
}
