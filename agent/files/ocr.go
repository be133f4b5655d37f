package files

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kelpie/kelpie/internal/jsonapi"
)

// OCR reads PDFs with Mistral's OCR API, as Letta does when it has a
// Mistral key: the whole document is sent (base64, as a data URL), and
// its text is the pages' Markdown, joined. Scanned PDFs, which have no
// text layer, can then be read. Text files never go to it.

// Limits of OCR, each with its unit.
const (
	DefaultOCRTimeout = 5 * time.Minute // one document
	MaxOCRAnswerBytes = 64 << 20        // of the OCR's answer; more is an error
	// DefaultMistralURL is Mistral's API.
	DefaultMistralURL = "https://api.mistral.ai"
	// OCRModel is the model Letta asks for.
	OCRModel = "mistral-ocr-latest"
)

// OCRConfig configures OCR. Zero fields take the defaults.
type OCRConfig struct {
	APIKey  string // the Mistral key; required
	BaseURL string // Mistral's API (DefaultMistralURL), or a compatible one
	Timeout time.Duration
}

// OCR extracts documents' text with Mistral's OCR.
type OCR struct {
	cfg    OCRConfig
	client *http.Client
}

// NewOCR returns an OCR, or nil when cfg has no key (PDFs are then read
// by their text layer alone, as Letta reads them without a Mistral key).
func NewOCR(cfg OCRConfig) *OCR {
	if cfg.APIKey == "" {
		return nil
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultMistralURL
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultOCRTimeout
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &OCR{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}}
}

// ExtractWith returns the text of a file of type mime: a PDF through ocr
// when it is not nil, everything else (and every PDF without it) as
// Extract reads it.
func ExtractWith(ctx context.Context, ocr *OCR, mime string, data []byte) (string, error) {
	if ocr == nil || mime != "application/pdf" {
		return Extract(mime, data)
	}
	return ocr.read(ctx, mime, data)
}

// ocrRequest is the body of Mistral's POST /v1/ocr.
type ocrRequest struct {
	Model    string `json:"model"`
	Document struct {
		Type        string `json:"type"`
		DocumentURL string `json:"document_url"`
	} `json:"document"`
	IncludeImageBase64 bool `json:"include_image_base64"`
}

// read sends one document to the OCR and joins its pages' Markdown.
func (o *OCR) read(ctx context.Context, mime string, data []byte) (string, error) {
	req := ocrRequest{Model: OCRModel}
	req.Document.Type = "document_url"
	req.Document.DocumentURL = "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(data)
	var got struct {
		Pages []struct {
			Markdown string `json:"markdown"`
		} `json:"pages"`
	}
	header := http.Header{"Authorization": {"Bearer " + o.cfg.APIKey}}
	if err := jsonapi.Post(ctx, o.client, "the OCR", o.cfg.BaseURL+"/v1/ocr", header, req, MaxOCRAnswerBytes, &got); err != nil {
		return "", fmt.Errorf("OCR extraction failed: %w", err)
	}
	var b strings.Builder
	for _, p := range got.Pages {
		b.WriteString(p.Markdown)
	}
	text := strings.ToValidUTF8(b.String(), "\uFFFD")
	if strings.TrimSpace(text) == "" {
		return "", errors.New("the OCR found no text in the document")
	}
	return cutText(text), nil
}
