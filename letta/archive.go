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
