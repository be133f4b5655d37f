package letta

// PassageSearchRequest is the body of POST /v1/passages/search.
type PassageSearchRequest struct {
	Query        *string    `json:"query"`
	AgentID      *string    `json:"agent_id"`
	ArchiveID    *string    `json:"archive_id"`
	Tags         []string   `json:"tags"`
	TagMatchMode *string    `json:"tag_match_mode"`
	Limit        *int       `json:"limit"`
	StartDate    *Timestamp `json:"start_date"`
	EndDate      *Timestamp `json:"end_date"`
}

// PassageSearchResult is one hit of POST /v1/passages/search: the passage,
// its relevance score and how it was found (metadata).
type PassageSearchResult struct {
	Passage  Passage        `json:"passage"`
	Score    float64        `json:"score"`
	Metadata map[string]any `json:"metadata"`
}

// Archive is a shared archive of passages (Letta's Archive).
type Archive struct {
	ID               string           `json:"id"`
	Name             string           `json:"name"`
	Description      *string          `json:"description"`
	OrganizationID   string           `json:"organization_id"`
	VectorDBProvider string           `json:"vector_db_provider"`
	EmbeddingConfig  *EmbeddingConfig `json:"embedding_config"`
	Metadata         map[string]any   `json:"metadata"`
	CreatedByID      *string          `json:"created_by_id"`
	LastUpdatedByID  *string          `json:"last_updated_by_id"`
	CreatedAt        Timestamp        `json:"created_at"`
	UpdatedAt        Timestamp        `json:"updated_at"`
}

// ArchiveCreateRequest is the body of POST /v1/archives.
type ArchiveCreateRequest struct {
	Name            *string          `json:"name"`
	Description     *string          `json:"description"`
	Embedding       *string          `json:"embedding"`
	EmbeddingConfig *EmbeddingConfig `json:"embedding_config"`
}

// ArchiveUpdateRequest is the body of PATCH /v1/archives/{id}.
type ArchiveUpdateRequest struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

// ArchivePassageCreate is one passage to add to an archive.
type ArchivePassageCreate struct {
	Text      *string        `json:"text"`
	Metadata  map[string]any `json:"metadata"`
	Tags      []string       `json:"tags"`
	CreatedAt *string        `json:"created_at"`
}

// ArchivePassageBatch is the body of POST /v1/archives/{id}/passages/batch.
type ArchivePassageBatch struct {
	Passages []ArchivePassageCreate `json:"passages"`
}

// DefaultOrgID is the organization of everything on a self-hosted server
// (Letta's default organization).
const DefaultOrgID = "org-00000000-0000-4000-8000-000000000000"
