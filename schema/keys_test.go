package schema

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// Spec: keys made without fmt are those fmt made (stored keys keep their
// form): time and sequence parts are 16 hex digits, term paths the kind
// and 32 hex digits of the value's SHA-256.
func TestKeysAsFormatted(t *testing.T) {
	for _, v := range []uint64{0, 1, 0xabc, math.MaxInt64, math.MaxUint64} {
		if got, want := string(appendHex16([]byte("p/"), v)), fmt.Sprintf("p/%016x", v); got != want {
			t.Errorf("appendHex16(%d) = %q, want %q", v, got, want)
		}
	}
	at := time.Unix(1_700_000_000, 123)
	if got, want := string(IndexKey("index/agents/", at, "agent-1")), fmt.Sprintf("index/agents/%016x/agent-1", uint64(at.UnixNano())); got != want {
		t.Errorf("IndexKey = %q, want %q", got, want)
	}
	if got, want := string(MessageKey("agent-1", 7)), Messages.Prefix+"agent-1/0000000000000007"; got != want {
		t.Errorf("MessageKey = %q, want %q", got, want)
	}
	term := Term{TermName, "bench"}
	if got, want := string(TermPrefix(term)), AgentTerms.Prefix+"name/1b32c28cb38c05480eccc1bd60ff9702/"; got != want {
		t.Errorf("TermPrefix = %q, want %q", got, want)
	}
}
