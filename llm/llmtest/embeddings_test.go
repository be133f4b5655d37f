package llmtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Spec: the double's /v1/embeddings speaks OpenAI's wire protocol: one
// vector per input in order, of the model's dimension (or the requested
// one), as floats or base64; OpenAI's 400s and 404 for what it refuses.
// The embeddings client reads it, and near texts are near.
func TestEmbeddingsEndpoint(t *testing.T) {
	s := NewServer(t)
	post := func(body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(s.OpenAIBaseURL()+"/embeddings", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s: %s", body, data)
		}
		return resp.StatusCode, out
	}
	status, out := post(`{"model":"text-embedding-3-small","input":["a b","c"]}`)
	data := out["data"].([]any)
	if status != 200 || len(data) != 2 || len(data[0].(map[string]any)["embedding"].([]any)) != 1536 || out["object"] != "list" {
		t.Fatalf("%d %v", status, out["object"])
	}
	status, out = post(`{"model":"text-embedding-3-large","input":"x","dimensions":256,"encoding_format":"base64"}`)
	enc, _ := base64.StdEncoding.DecodeString(out["data"].([]any)[0].(map[string]any)["embedding"].(string))
	if status != 200 || len(enc) != 4*256 {
		t.Errorf("base64 with dimensions: %d, %d bytes", status, len(enc))
	}
	for body, want := range map[string]int{
		`{"model":"text-embedding-3-small","input":""}`: 400,
		`{"model":"text-embedding-3-small","input":[]}`: 400,
		`{"input":"x"}`: 400,
		`{"model":"text-embedding-3-small","input":"x","bogus":1}`:               400,
		`{"model":"text-embedding-ada-002","input":"x","dimensions":8}`:          400,
		`{"model":"text-embedding-3-small","input":"x","encoding_format":"hex"}`: 400,
		`{"model":"no-such-model","input":"x"}`:                                  404,
	} {
		if status, _ := post(body); status != want {
			t.Errorf("%s: %d, want %d", body, status, want)
		}
	}
	vs, err := s.EmbeddingRegistry().Embed(context.Background(), "openai/text-embedding-3-small", []string{"the cat sat", "a cat sat down", "stock prices fell"})
	if err != nil {
		t.Fatal(err)
	}
	var near, far float32
	for i := range vs[0] {
		near += vs[0][i] * vs[1][i]
		far += vs[0][i] * vs[2][i]
	}
	if near <= far || near < 0.5 {
		t.Errorf("similarity of near texts %v, of far ones %v", near, far)
	}
	if reqs, texts := s.EmbeddingCalls(); reqs != 3 || texts != 6 {
		t.Errorf("counted %d requests of %d texts", reqs, texts)
	}
}
