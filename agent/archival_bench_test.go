package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// BenchmarkArchivalCreate measures POST .../archival-memory as the service
// runs it: the passage embedded (1536 dimensions) by the llmtest double
// over loopback HTTP, then committed with its vectors by the agent's
// actor, in the in-memory store; parallelism 1 and 8 (times GOMAXPROCS
// goroutines) on one agent.
//
//	go test ./agent -run '^$' -bench BenchmarkArchivalCreate -benchtime 2000x
func BenchmarkArchivalCreate(b *testing.B) {
	for _, par := range []int{1, 8} {
		b.Run(fmt.Sprintf("parallelism=%d", par), func(b *testing.B) {
			double := llmtest.NewServer(b)
			svc, err := agent.New(agent.Config{Store: kv.NewMemDB(), DefaultModel: "openai/gpt-4o-mini", Embedder: double.EmbeddingRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				svc.Close(ctx)
			}()
			ctx := context.Background()
			a, err := svc.Agents.Create(ctx, letta.CreateAgentRequest{})
			if err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					text := fmt.Sprintf("note %d: the meeting about topic %d moved to room %d", i, i%97, i%13)
					if _, err := svc.Archival.Create(ctx, a.ID, letta.CreatePassageRequest{Text: text}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
		})
	}
}
