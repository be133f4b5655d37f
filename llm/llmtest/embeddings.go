package llmtest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/kelpie/kelpie/embedding"
)

// EmbeddingModels are the embedding models the double serves, with their
// native dimensions (OpenAI's; dimensions may shorten the -3 models).
var EmbeddingModels = map[string]int{
	"text-embedding-3-small": 1536,
	"text-embedding-3-large": 3072,
	"text-embedding-ada-002": 1536,
}

// MaxEmbeddingInputs is how many inputs one request may carry, as OpenAI.
const MaxEmbeddingInputs = 2048

// oaEmbeddingFields are the request fields OpenAI's embeddings API knows.
var oaEmbeddingFields = map[string]bool{"model": true, "input": true, "encoding_format": true, "dimensions": true, "user": true}

type oaEmbeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat *string         `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
}

// serveEmbeddings answers POST /v1/embeddings as OpenAI does: each input's
// vector is Embed(input, dim), so that texts sharing words are near.
func (s *Server) serveEmbeddings(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var in oaEmbeddingRequest
	if why := parseBody(body, oaEmbeddingFields, openAIBodyWording, &in, decodeOptions); why != "" {
		openAIError(w, http.StatusBadRequest, "invalid_request_error", "", why)
		return
	}
	inputs, why := oaEmbeddingInputs(in.Input)
	if in.Model == "" {
		why = "you must provide a model parameter"
	}
	format := "float"
	if in.EncodingFormat != nil {
		format = *in.EncodingFormat
	}
	if why == "" && format != "float" && format != "base64" {
		why = fmt.Sprintf("'%s' is not one of ['float', 'base64'] - 'encoding_format'", format)
	}
	if why != "" {
		openAIError(w, http.StatusBadRequest, "invalid_request_error", "", why)
		return
	}
	native, ok := EmbeddingModels[in.Model]
	if !ok {
		openAIError(w, http.StatusNotFound, "invalid_request_error", "model_not_found",
			fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", in.Model))
		return
	}
	dim := native
	if in.Dimensions != nil {
		if !strings.HasPrefix(in.Model, "text-embedding-3") || *in.Dimensions < 1 || *in.Dimensions > native {
			openAIError(w, http.StatusBadRequest, "invalid_request_error", "",
				fmt.Sprintf("This model does not support specifying dimensions, or %d is out of range.", *in.Dimensions))
			return
		}
		dim = *in.Dimensions
	}
	s.countEmbeddings(len(inputs))
	data := make([]map[string]any, len(inputs))
	tokens := 0
	for i, text := range inputs {
		v := Embed(text, dim)
		var enc any = v
		if format == "base64" {
			b := make([]byte, 4*len(v))
			for j, x := range v {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(x))
			}
			enc = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": enc}
		tokens += len(strings.Fields(text)) + 1
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "data": data, "model": in.Model,
		"usage": map[string]any{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}

// oaEmbeddingInputs reads input: a string or an array of strings, none
// empty (OpenAI refuses those; the token-array forms are not served).
func oaEmbeddingInputs(raw json.RawMessage) ([]string, string) {
	const invalid = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, invalid
		}
		return []string{one}, ""
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil || len(many) == 0 || len(many) > MaxEmbeddingInputs {
		return nil, invalid
	}
	for _, t := range many {
		if t == "" {
			return nil, invalid
		}
	}
	return many, ""
}

// Embed is the double's embedding of text: embedding.HashedWords (a hashed
// bag of its lower-cased words). Texts sharing words are near; the same
// text gives the same vector on every run.
func Embed(text string, dim int) []float32 { return embedding.HashedWords(text, dim) }

// countEmbeddings records that a request embedded n texts.
func (s *Server) countEmbeddings(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.embedRequests++
	s.embedTexts += n
}

// EmbeddingCalls returns how many embeddings requests were answered and
// how many texts they embedded.
func (s *Server) EmbeddingCalls() (requests, texts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.embedRequests, s.embedTexts
}
