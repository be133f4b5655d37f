package letta

// Passage is an archival memory passage as the API returns it.
type Passage struct {
	CreatedByID     *string          `json:"created_by_id"`
	LastUpdatedByID *string          `json:"last_updated_by_id"`
	CreatedAt       Timestamp        `json:"created_at"`
	UpdatedAt       Timestamp        `json:"updated_at"`
	IsDeleted       bool             `json:"is_deleted"`
	ArchiveID       *string          `json:"archive_id"`
	SourceID        *string          `json:"source_id"`
	FileID          *string          `json:"file_id"`
	FileName        *string          `json:"file_name"`
	Metadata        map[string]any   `json:"metadata"`
	Tags            []string         `json:"tags"`
	ID              string           `json:"id"`
	Text            string           `json:"text"`
	Embedding       []float64        `json:"embedding"`
	EmbeddingConfig *EmbeddingConfig `json:"embedding_config"`
}

// CreatePassageRequest is the body of POST /v1/agents/{id}/archival-memory.
type CreatePassageRequest struct {
	Text      string     `json:"text"`
	Tags      []string   `json:"tags"`
	CreatedAt *Timestamp `json:"created_at"`
}

// ArchivalResult is one search hit.
type ArchivalResult struct {
	ID        string   `json:"id"`
	Timestamp string   `json:"timestamp"`
	Content   string   `json:"content"`
	Tags      []string `json:"tags"`
}

// ArchivalSearchResponse is the answer of the archival search route.
type ArchivalSearchResponse struct {
	Results []ArchivalResult `json:"results"`
	Count   int              `json:"count"`
	// SearchMode is Kelpie's: "hybrid" (embeddings and words) or
	// "lexical" (words only); Note says why a search was lexical.
	SearchMode string `json:"search_mode"`
	Note       string `json:"note,omitempty"`
}
