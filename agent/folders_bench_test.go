package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// BenchmarkUploadProcessed measures an upload of a 256 KiB Markdown file
// until its processing completes (parsing, about 220 passages, their
// embeddings by an in-process embedder, each batch committed), on the
// in-memory store, polled every 200µs: the cost of Kelpie's side of an upload, without a
// model's.
func BenchmarkUploadProcessed(b *testing.B) {
	store := kv.NewDB(kv.NewMemEngine())
	svc, err := agent.New(agent.Config{Store: store, DefaultModel: "openai/gpt-4o-mini", Embedder: &stallingEmbedder{}})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close(context.Background())
	ctx := context.Background()
	name := "bench"
	f, err := svc.Folders.Create(ctx, letta.FolderCreate{Name: &name})
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	for i := 0; sb.Len() < 256<<10; i++ {
		fmt.Fprintf(&sb, "Line %d of the manual says something about part %d. It is followed by another sentence.\n", i, i*7)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		up, err := svc.Folders.Upload(ctx, f.ID, agent.Upload{FileName: "manual.md", Data: data, Duplicate: agent.DuplicateReplace})
		if err != nil {
			b.Fatal(err)
		}
		for {
			got, err := svc.Folders.GetFile(ctx, f.ID, up.File.ID, false)
			if err != nil {
				b.Fatal(err)
			}
			if got.ProcessingStatus == letta.FileCompleted {
				break
			}
			if got.ProcessingStatus == letta.FileError {
				b.Fatal(*got.ErrorMessage)
			}
			time.Sleep(200 * time.Microsecond) // a client polls; this one often
		}
	}
}
