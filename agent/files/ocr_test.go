package files_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kelpie/kelpie/agent/files"
	"github.com/kelpie/kelpie/internal/kelpietest"
)

// mistralOCR speaks Mistral's OCR API on loopback: with key "mk" it
// answers the pages given ({size} replaced by the document's size); any other key
// is a 401, as Mistral answers.
func mistralOCR(t *testing.T, calls *atomic.Int32, pages ...string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Model    string `json:"model"`
			Document struct {
				Type        string `json:"type"`
				DocumentURL string `json:"document_url"`
			} `json:"document"`
			IncludeImageBase64 *bool `json:"include_image_base64"`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/ocr" || json.Unmarshal(body, &req) != nil ||
			req.Model != "mistral-ocr-latest" || req.Document.Type != "document_url" || req.IncludeImageBase64 == nil || *req.IncludeImageBase64 {
			http.Error(w, `{"detail":"bad request"}`, http.StatusUnprocessableEntity)
			return
		}
		if r.Header.Get("Authorization") != "Bearer mk" {
			http.Error(w, `{"message":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(req.Document.DocumentURL, "data:application/pdf;base64,"))
		if err != nil || !strings.HasPrefix(string(data), "%PDF") {
			http.Error(w, `{"detail":"not a PDF data URL"}`, http.StatusUnprocessableEntity)
			return
		}
		var ps []map[string]any
		for i, p := range pages {
			ps = append(ps, map[string]any{"index": i, "markdown": strings.ReplaceAll(p, "{size}", fmt.Sprint(len(data))), "images": []any{}, "dimensions": map[string]int{"dpi": 200, "height": 2200, "width": 1700}})
		}
		json.NewEncoder(w).Encode(map[string]any{"pages": ps, "model": "mistral-ocr-2505", "usage_info": map[string]int{"pages_processed": len(ps), "doc_size_bytes": len(data)}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Spec: with a Mistral key, a PDF (a scanned one too: no text layer) is
// read by Mistral's OCR, sent whole as a data URL with Letta's request,
// its text the pages' Markdown joined; text files never go to the OCR;
// without a key a scanned PDF is an error that says how to read it.
func TestOCRReadsScannedPDFs(t *testing.T) {
	var calls atomic.Int32
	srv := mistralOCR(t, &calls, "# Scanned ({size} bytes)\n\nPage one.\n", "Page two.")
	ocr := files.NewOCR(files.OCRConfig{APIKey: "mk", BaseURL: srv.URL})
	scanned := kelpietest.PDF()
	got, err := files.ExtractWith(context.Background(), ocr, "application/pdf", scanned)
	if want := fmt.Sprintf("# Scanned (%d bytes)\n\nPage one.\nPage two.", len(scanned)); err != nil || got != want {
		t.Errorf("OCR text %q (%v), want %q", got, err, want)
	}
	if got, err := files.ExtractWith(context.Background(), ocr, "text/markdown", []byte("# Notes")); err != nil || got != "# Notes" || calls.Load() != 1 {
		t.Errorf("markdown: %q %v after %d OCR calls", got, err, calls.Load())
	}
	if files.NewOCR(files.OCRConfig{BaseURL: srv.URL}) != nil {
		t.Error("an OCR without a key")
	}
	if _, err := files.ExtractWith(context.Background(), nil, "application/pdf", scanned); err == nil || !strings.Contains(err.Error(), "--mistral-api-key") {
		t.Errorf("scanned PDF without OCR: %v", err)
	}
}

// Spec: an OCR that refuses the key, or finds no text, is an error naming
// what happened.
func TestOCRFailures(t *testing.T) {
	var calls atomic.Int32
	srv := mistralOCR(t, &calls, "  \n")
	bad := files.NewOCR(files.OCRConfig{APIKey: "wrong", BaseURL: srv.URL})
	if _, err := files.ExtractWith(context.Background(), bad, "application/pdf", kelpietest.PDF()); err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Errorf("wrong key: %v", err)
	}
	empty := files.NewOCR(files.OCRConfig{APIKey: "mk", BaseURL: srv.URL})
	if _, err := files.ExtractWith(context.Background(), empty, "application/pdf", kelpietest.PDF()); err == nil || !strings.Contains(err.Error(), "no text") {
		t.Errorf("blank pages: %v", err)
	}
}
