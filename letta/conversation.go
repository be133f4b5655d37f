package letta

// Conversation is a conversation as the API returns it.
type Conversation struct {
	CreatedByID         *string   `json:"created_by_id"`
	LastUpdatedByID     *string   `json:"last_updated_by_id"`
	CreatedAt           Timestamp `json:"created_at"`
	UpdatedAt           Timestamp `json:"updated_at"`
	ID                  string    `json:"id"`
	AgentID             string    `json:"agent_id"`
	Summary             *string   `json:"summary"`
	InContextMessageIDs []string  `json:"in_context_message_ids"`
	IsolatedBlockIDs    []string  `json:"isolated_block_ids"`
}

// CreateConversationRequest is the body of POST /v1/conversations.
type CreateConversationRequest struct {
	Summary *string `json:"summary"`
}
