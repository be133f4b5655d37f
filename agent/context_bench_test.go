package agent_test

import (
	"fmt"
	"testing"
)

// BenchmarkGetAgent measures reading an agent (GET /v1/agents/{id} without
// its blocks, the read every client makes) with its context holding only
// its system message, and 200 messages more: message_ids is read from the
// context on every read.
func BenchmarkGetAgent(b *testing.B) {
	for _, turns := range []int{0, 100} {
		b.Run(fmt.Sprintf("context=%d", 1+2*turns), func(b *testing.B) {
			e := newEnv(b)
			a := e.defaultAgent()
			for range turns {
				e.send(a.ID, userMsg("hello there, how are you today?"))
			}
			b.ResetTimer()
			for b.Loop() {
				st, err := e.svc.Agents.Get(e.ctx, a.ID, false)
				if err != nil || len(st.MessageIDs) != 1+2*turns {
					b.Fatal(st.MessageIDs, err)
				}
			}
		})
	}
}
