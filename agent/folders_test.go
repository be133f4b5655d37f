package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/agent/files"
	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// stallingEmbedder embeds as the LLM double does, or, while stall is set,
// holds every request until its service stops.
type stallingEmbedder struct{ stall bool }

func (e *stallingEmbedder) Embed(ctx context.Context, _ string, texts []string) ([][]float32, error) {
	if e.stall {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = llmtest.Embed(t, 8)
	}
	return out, nil
}

func folderService(t *testing.T, store kv.Store, e *stallingEmbedder) *agent.Service {
	t.Helper()
	svc, err := agent.New(agent.Config{Store: store, DefaultModel: "openai/gpt-4o-mini", Embedder: e})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	return svc
}

// waitStatus polls a file until its status is want (or fails the test).
func waitStatus(t *testing.T, svc *agent.Service, folderID, fileID, want string) *letta.FileMetadata {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		f, err := svc.Folders.GetFile(context.Background(), folderID, fileID, false)
		if err != nil {
			t.Fatal(err)
		}
		if f.ProcessingStatus == want {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("file %s is %s, want %s", fileID, f.ProcessingStatus, want)
		}
	}
}

// Spec: a file whose processing a stop interrupted (mid-embedding, or
// still waiting to be parsed) is resumed by the next service on the same
// store and completes, with every rule of the schema kept; a file that
// cannot be read ends in error with why, never stuck.
func TestFileProcessingResumesAfterRestart(t *testing.T) {
	store := kv.NewDB(kv.NewMemEngine())
	ctx := context.Background()
	first := folderService(t, store, &stallingEmbedder{stall: true})
	name := "docs"
	f, err := first.Folders.Create(ctx, letta.FolderCreate{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range []string{"a.md", "b.txt", "c.pdf"} {
		data := []byte("The code of " + n + " is 42.")
		if strings.HasSuffix(n, ".pdf") {
			data = kelpietest.PDF("The code of c.pdf is 42.")
		}
		up, err := first.Folders.Upload(ctx, f.ID, agent.Upload{FileName: n, Data: data, Duplicate: agent.DuplicateSuffix})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, up.File.ID)
	}
	// Two files (whichever got the two processing slots) are held
	// mid-embedding; the third waits to be parsed.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		states := map[string]int{}
		for _, id := range ids {
			got, err := first.Folders.GetFile(ctx, f.ID, id, false)
			if err != nil {
				t.Fatal(err)
			}
			states[got.ProcessingStatus]++
		}
		if states[letta.FileEmbedding] == 2 && states[letta.FileParsing] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("files are %v, want two embedding and one parsing", states)
		}
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}

	second := folderService(t, store, &stallingEmbedder{})
	for _, id := range ids {
		got := waitStatus(t, second, f.ID, id, letta.FileCompleted)
		if *got.ChunksEmbedded != *got.TotalChunks || *got.TotalChunks != 1 {
			t.Errorf("resumed file %+v", got)
		}
	}
	bad, err := second.Folders.Upload(ctx, f.ID, agent.Upload{FileName: "broken.pdf", Data: []byte("%PDF-1.4 not really"), Duplicate: agent.DuplicateSuffix})
	if err != nil {
		t.Fatal(err)
	}
	failed := waitStatus(t, second, f.ID, bad.File.ID, letta.FileError)
	if failed.ErrorMessage == nil || !strings.Contains(*failed.ErrorMessage, "PDF") {
		t.Errorf("failed file %+v", failed)
	}
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkStore(t, store)
}

// Spec: with a Mistral key, an uploaded scanned PDF (no text layer) is
// read by the OCR in the background and completes with its text; without
// one it ends in error saying how to read it.
func TestScannedPDFThroughOCR(t *testing.T) {
	ocr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/ocr" || r.Header.Get("Authorization") != "Bearer mk" {
			http.Error(w, `{"message":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"pages":[{"index":0,"markdown":"Invoice 7: the total is 42 EUR.","images":[]}],"model":"mistral-ocr-2505","usage_info":{"pages_processed":1}}`)
	}))
	defer ocr.Close()
	ctx := context.Background()
	for _, withOCR := range []bool{true, false} {
		cfg := agent.Config{Store: kv.NewDB(kv.NewMemEngine()), DefaultModel: "openai/gpt-4o-mini", Embedder: &stallingEmbedder{}}
		if withOCR {
			cfg.OCR = files.NewOCR(files.OCRConfig{APIKey: "mk", BaseURL: ocr.URL})
		}
		svc, err := agent.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close(ctx)
		name := "scans"
		f, err := svc.Folders.Create(ctx, letta.FolderCreate{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		up, err := svc.Folders.Upload(ctx, f.ID, agent.Upload{FileName: "invoice.pdf", Data: kelpietest.PDF(), Duplicate: agent.DuplicateSuffix})
		if err != nil {
			t.Fatal(err)
		}
		if !withOCR {
			failed := waitStatus(t, svc, f.ID, up.File.ID, letta.FileError)
			if failed.ErrorMessage == nil || !strings.Contains(*failed.ErrorMessage, "--mistral-api-key") {
				t.Errorf("scanned PDF without OCR: %+v", failed)
			}
			continue
		}
		waitStatus(t, svc, f.ID, up.File.ID, letta.FileCompleted)
		got, err := svc.Folders.GetFile(ctx, f.ID, up.File.ID, true)
		if err != nil || got.Content == nil || *got.Content != "Invoice 7: the total is 42 EUR." {
			t.Errorf("OCR'd file: %+v %v", got, err)
		}
	}
}
