package memory

import (
	"context"
	"errors"
	"fmt"

	"github.com/kelpie/kelpie/embedding"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// DefaultEmbedding is the embedding model of an agent that names none:
// Letta's default (OpenAI's text-embedding-3-small).
const DefaultEmbedding = "openai/text-embedding-3-small"

// EmbeddingHandle is the model handle that embeds an agent's passages.
func EmbeddingHandle(a *schema.Agent) string {
	c := a.EmbeddingConfig
	switch {
	case c == nil:
		return DefaultEmbedding
	case c.Handle != nil && *c.Handle != "":
		return *c.Handle
	case c.EmbeddingEndpointType != "" && c.EmbeddingModel != "":
		return c.EmbeddingEndpointType + "/" + c.EmbeddingModel
	}
	return DefaultEmbedding
}

// Embed computes the embeddings of texts with handle. It is called before
// the transaction that stores or searches with them, never inside an
// actor. With no embedder, or none for the handle's provider, it answers
// no embeddings and why (searches then rank by words and say so); any
// other failure is an error of KindUnavailable.
func Embed(ctx context.Context, e embedding.Embedder, handle string, texts []string) ([]*Embedded, string, error) {
	if e == nil {
		return nil, "no embedding provider is configured (set OPENAI_API_KEY or OPENAI_BASE_URL for " + handle + "): passages are ranked by matching words only", nil
	}
	vs, err := e.Embed(ctx, handle, texts)
	if errors.Is(err, embedding.ErrNotConfigured) {
		return nil, fmt.Sprintf("no embedding provider serves %s (%v): passages are ranked by matching words only", handle, err), nil
	}
	if err != nil {
		return nil, "", &letta.Error{Kind: letta.KindUnavailable, Message: fmt.Sprintf("could not embed with %s: %v", handle, err)}
	}
	out := make([]*Embedded, len(vs))
	for i, v := range vs {
		out[i] = &Embedded{Handle: handle, Vector: v}
	}
	return out, "", nil
}
