package letta

// Run statuses.
const (
	RunCreated   = "created"
	RunRunning   = "running"
	RunCompleted = "completed"
	RunFailed    = "failed"
	RunCancelled = "cancelled"
)

// Run is a run as the API returns it (Letta's Run).
type Run struct {
	ID                 string         `json:"id"`
	Status             string         `json:"status"`
	CreatedAt          Timestamp      `json:"created_at"`
	CompletedAt        *Timestamp     `json:"completed_at"`
	AgentID            string         `json:"agent_id"`
	ConversationID     *string        `json:"conversation_id"`
	BaseTemplateID     *string        `json:"base_template_id"`
	Background         *bool          `json:"background"`
	Metadata           map[string]any `json:"metadata"`
	RequestConfig      any            `json:"request_config"`
	StopReason         *string        `json:"stop_reason"`
	CallbackURL        *string        `json:"callback_url"`
	CallbackSentAt     *Timestamp     `json:"callback_sent_at"`
	CallbackStatusCode *int           `json:"callback_status_code"`
	CallbackError      *string        `json:"callback_error"`
	TTFTNs             *int64         `json:"ttft_ns"`
	TotalDurationNs    *int64         `json:"total_duration_ns"`
}
