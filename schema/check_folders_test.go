package schema_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// holdingEmbedder embeds as wordEmbedder does, but holds texts that say
// "hold" until the service stops: their files stay unfinished.
type holdingEmbedder struct{ wordEmbedder }

func (h holdingEmbedder) Embed(ctx context.Context, model string, texts []string) ([][]float32, error) {
	for _, t := range texts {
		if strings.Contains(t, "hold") {
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	return h.wordEmbedder.Embed(ctx, model, texts)
}

// populateFolders writes every family of folders: a folder attached to
// the agent with a completed file (its text, passages and the agent's view
// of it), two files held mid-embedding and a third waiting for its turn
// (still parsing, its upload stored).
func populateFolders(t *testing.T, svc *agent.Service, agentID string) {
	ctx := context.Background()
	name := "docs"
	f, err := svc.Folders.Create(ctx, letta.FolderCreate{Name: &name})
	must(t, err)
	must(t, svc.Agents.AttachFolder(ctx, agentID, f.ID))
	up, err := svc.Folders.Upload(ctx, f.ID, agent.Upload{FileName: "notes.md", Data: []byte("# Notes\n\nThe code is 42."), Duplicate: agent.DuplicateSuffix})
	must(t, err)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got, err := svc.Folders.GetFile(ctx, f.ID, up.File.ID, false)
		must(t, err)
		if got.ProcessingStatus == letta.FileCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("file still %s", got.ProcessingStatus)
		}
	}
	for _, n := range []string{"a.txt", "b.txt", "c.txt"} {
		_, err := svc.Folders.Upload(ctx, f.ID, agent.Upload{FileName: n, Data: []byte("hold " + n), Duplicate: agent.DuplicateSuffix})
		must(t, err)
	}
}
