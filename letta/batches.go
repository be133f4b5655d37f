package letta

// DefaultUserID is the user a self-hosted Letta acts as when a request
// names none.
const DefaultUserID = "user-00000000-0000-4000-8000-000000000000"

// BatchJob is a batch of agent runs (Letta's BatchJob, a job of type
// batch).
type BatchJob struct {
	ID                 string         `json:"id"`
	UserID             string         `json:"user_id"`
	Status             string         `json:"status"`
	CreatedAt          Timestamp      `json:"created_at"`
	UpdatedAt          *Timestamp     `json:"updated_at"`
	CreatedByID        *string        `json:"created_by_id"`
	LastUpdatedByID    *string        `json:"last_updated_by_id"`
	CompletedAt        *Timestamp     `json:"completed_at"`
	StopReason         *string        `json:"stop_reason"`
	Metadata           map[string]any `json:"metadata"`
	JobType            string         `json:"job_type"`
	Background         *bool          `json:"background"`
	AgentID            *string        `json:"agent_id"`
	CallbackURL        *string        `json:"callback_url"`
	CallbackSentAt     *Timestamp     `json:"callback_sent_at"`
	CallbackStatusCode *int           `json:"callback_status_code"`
	CallbackError      *string        `json:"callback_error"`
	TTFTNs             *int64         `json:"ttft_ns"`
	TotalDurationNs    *int64         `json:"total_duration_ns"`
}

// CreateBatch is the body of POST /v1/messages/batches: a message request
// per agent.
type CreateBatch struct {
	Requests    []BatchRequestBody `json:"requests"`
	CallbackURL *string            `json:"callback_url"`
}

// BatchRequestBody is one agent's request of a batch (Letta's
// LettaBatchRequest: a message request with the agent's id).
type BatchRequestBody struct {
	MessageRequest
	AgentID *string `json:"agent_id"`
}

// BatchMessages is the answer of GET /v1/messages/batches/{id}/messages
// (Letta's LettaBatchMessages): messages in Letta's stored shape.
type BatchMessages struct {
	Messages []AgentFileMessage `json:"messages"`
}
