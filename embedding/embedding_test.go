package embedding

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// server answers every embeddings request with answer(texts).
func server(t *testing.T, answer func(w http.ResponseWriter, texts []string)) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if r.URL.Path != "/v1/embeddings" || json.NewDecoder(r.Body).Decode(&req) != nil || r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		answer(w, req.Input)
	}))
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL + "/v1/", APIKey: "k"}
}

type datum struct {
	Index     int       `json:"index"`
	Embedding []float32 `json:"embedding"`
}

func reply(w http.ResponseWriter, data []datum) {
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
}

// Spec: vectors come back in the texts' order whatever order the server
// lists them in, normalised; calls over MaxBatchTexts are split.
func TestEmbedOrdersAndNormalises(t *testing.T) {
	requests := 0
	c := server(t, func(w http.ResponseWriter, texts []string) {
		requests++
		var data []datum
		for i := len(texts) - 1; i >= 0; i-- { // reversed on purpose
			data = append(data, datum{i, []float32{float32(len(texts[i])), 0, 0}})
		}
		reply(w, data)
	})
	texts := make([]string, MaxBatchTexts+3)
	for i := range texts {
		texts[i] = strings.Repeat("x", i%5+1)
	}
	vs, err := c.Embed(context.Background(), "m", texts)
	if err != nil {
		t.Fatal(err)
	}
	if requests != 2 || len(vs) != len(texts) {
		t.Fatalf("%d requests, %d vectors", requests, len(vs))
	}
	for i, v := range vs {
		if v[0] != 1 || v[1] != 0 {
			t.Fatalf("vector %d = %v, want the unit vector", i, v)
		}
	}
}

// Spec: an answer that does not hold exactly one non-empty vector per text
// is an error, and so is an error status (naming it and the body).
func TestEmbedRejectsBadAnswers(t *testing.T) {
	cases := map[string]func(w http.ResponseWriter, texts []string){
		"too few":  func(w http.ResponseWriter, _ []string) { reply(w, []datum{{0, []float32{1}}}) },
		"repeated": func(w http.ResponseWriter, _ []string) { reply(w, []datum{{0, []float32{1}}, {0, []float32{1}}}) },
		"empty":    func(w http.ResponseWriter, _ []string) { reply(w, []datum{{0, []float32{1}}, {1, nil}}) },
		"not json": func(w http.ResponseWriter, _ []string) { _, _ = w.Write([]byte("<html>")) },
		"status": func(w http.ResponseWriter, _ []string) {
			http.Error(w, `{"error":"overloaded"}`, http.StatusServiceUnavailable)
		},
		"out of range": func(w http.ResponseWriter, _ []string) {
			reply(w, []datum{{0, []float32{1}}, {2, []float32{1}}})
		},
	}
	for name, answer := range cases {
		_, err := server(t, answer).Embed(context.Background(), "m", []string{"a", "b"})
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		var se *StatusError
		if name == "status" && (!errors.As(err, &se) || se.Status != 503 || !strings.Contains(se.Body, "overloaded")) {
			t.Errorf("status: %v", err)
		}
	}
}

// Spec: a handle's provider must be configured; FromEnv configures the
// providers the model providers use.
func TestRegistry(t *testing.T) {
	env := map[string]string{"OLLAMA_BASE_URL": "http://127.0.0.1:1", "KELPIE_EMBEDDING_BASE_URL": "http://127.0.0.1:2/v1"}
	r := FromEnv(func(k string) string { return env[k] }, nil)
	if r.Providers() != 2 || r.clients["ollama"].BaseURL != "http://127.0.0.1:1/v1" || r.clients["openai"].BaseURL != "http://127.0.0.1:2/v1" {
		t.Fatalf("providers: %+v", r.clients)
	}
	if _, err := r.Embed(context.Background(), "vllm/m", []string{"x"}); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("unconfigured provider: %v", err)
	}
	if _, err := r.Embed(context.Background(), "no-slash", []string{"x"}); err == nil || errors.Is(err, ErrNotConfigured) {
		t.Errorf("malformed handle: %v", err)
	}
}

// Spec: Encode/Decode round-trip; DotEncoded is Dot; DotQuantized is Dot
// within the quantization's bound; TopK keeps the best, newer first among
// equals.
func TestVectors(t *testing.T) {
	a := Normalize([]float32{1, 2, 3, 4, 5, -6, 7})
	b := Normalize([]float32{-1, 0.5, 3, 0, 2, 1, -2})
	dec, err := Decode(Encode(b))
	if err != nil || len(dec) != len(b) || dec[2] != b[2] {
		t.Fatalf("round trip: %v %v", dec, err)
	}
	if _, err := Decode([]byte{1, 2, 3}); err == nil {
		t.Error("3 bytes decoded")
	}
	want := Dot(a, b)
	if got := DotEncoded(a, Encode(b)); math.Abs(float64(got-want)) > 1e-6 {
		t.Errorf("DotEncoded %v, Dot %v", got, want)
	}
	if got := DotQuantized(a, Quantize(b)); math.Abs(float64(got-want)) > 0.01 {
		t.Errorf("DotQuantized %v, Dot %v", got, want)
	}
	top := NewTopK(2)
	for i, s := range []float32{0.5, 0.9, 0.1, 0.9} {
		top.Offer(i, s)
	}
	if best := top.Best(); len(best) != 2 || best[0].Index != 3 || best[1].Index != 1 || top.Accepts(0.8) {
		t.Errorf("top: %+v", best)
	}
}
