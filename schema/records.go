package schema

import (
	"encoding/json"
	"time"

	"github.com/kelpie/kelpie/letta"
)

// Agent is an agent's record, stored as the state of its actor: everything
// but its blocks, which are shared and stored apart.
type Agent struct {
	ID                 string                 `json:"id"`
	Name               string                 `json:"name"`
	System             string                 `json:"system"`
	AgentType          string                 `json:"agent_type"`
	Description        *string                `json:"description"`
	Metadata           map[string]any         `json:"metadata"`
	Tags               []string               `json:"tags"`
	LLMConfig          letta.LLMConfig        `json:"llm_config"`
	EmbeddingConfig    *letta.EmbeddingConfig `json:"embedding_config"`
	ModelSettings      json.RawMessage        `json:"model_settings,omitempty"`
	CompactionSettings json.RawMessage        `json:"compaction_settings,omitempty"`
	ToolRules          []any                  `json:"tool_rules"`
	// Context is the agent's default conversation's context window.
	Context                Context `json:"context"`
	ProjectID              *string `json:"project_id"`
	MessageBufferAutoclear bool    `json:"message_buffer_autoclear"`
	EnableSleeptime        *bool   `json:"enable_sleeptime"`
	LastStopReason         *string `json:"last_stop_reason"`
	// LastRunCompletion and LastRunDurationMS say when the agent's last run
	// ended and how long it took; they change with the run's end.
	LastRunCompletion *time.Time `json:"last_run_completion,omitempty"`
	LastRunDurationMS *int64     `json:"last_run_duration_ms,omitempty"`
	Timezone          string     `json:"timezone"`
	Hidden            *bool      `json:"hidden"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
	// NextBlockPosition orders attachments: each attach takes the next one.
	NextBlockPosition int64 `json:"next_block_position"`
	// IncludeBaseTools false leaves out the agent type's built-in tools;
	// ToolNames are tools named at creation (built-in ones are offered).
	IncludeBaseTools *bool    `json:"include_base_tools,omitempty"`
	ToolNames        []string `json:"tool_names,omitempty"`
	// ToolEnv is the environment its custom tools run with (its
	// tool_exec_environment_variables and secrets), never rendered back.
	ToolEnv map[string]string `json:"tool_env,omitempty"`
}

// Context is a context window as stored (an agent's default
// conversation's, or a conversation's): its system message, the summary of
// the history compacted out of it, and the first message still in it. In
// context are, in order: the system message, the summary, and the
// context's messages numbered Start or later (other than those two).
// Nothing is ever deleted from a context: messages leave it by moving Start.
type Context struct {
	SystemID   string `json:"system_id,omitempty"`
	SystemSeq  uint64 `json:"system_seq,omitempty"`
	SummaryID  string `json:"summary_id,omitempty"`
	SummarySeq uint64 `json:"summary_seq,omitempty"`
	Start      uint64 `json:"start,omitempty"`
	// Indexed says that every message in the context (but its system
	// message and summary) has its ContextMessages entry, and no other
	// message does: true for every context opened since contexts were
	// indexed. System-role inputs stored before they were indexed (a
	// fixed bug) have no entry, and so stay out of the context.
	Indexed bool `json:"indexed,omitempty"`
}

// ContextOwner is the owner of the context a message is appended to: its
// conversation, or its agent for the default conversation.
func ContextOwner(m *Message) string {
	if m.ConversationID != "" {
		return m.ConversationID
	}
	return m.AgentID
}

// Block is a stored block: the API's shape plus what only storage needs.
type Block struct {
	letta.Block
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Tool is a stored custom tool: the API's shape plus its times.
type Tool struct {
	letta.Tool
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Message roles as stored.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
	RoleSystem    = "system"
	// RoleSummary is a summary of messages compacted out of a context.
	RoleSummary = "summary"
)

// Message is one stored message of an agent.
type Message struct {
	ID      string `json:"id"`
	AgentID string `json:"agent_id"`
	Seq     uint64 `json:"seq"`
	// ConversationID and Role follow Seq, always encoded, so that
	// MessageHead reads what a context listing needs without decoding the
	// whole message.
	ConversationID string `json:"conversation_id"`
	Role           string `json:"role"`
	// Content is a user message's content as sent (a JSON string or a list
	// of parts), or a client tool's result as sent when it shows images;
	// empty otherwise.
	Content json.RawMessage `json:"content,omitempty"`
	// Text is the message's text: what the model sees.
	Text string `json:"text"`
	// ThoughtsInText marks an assistant text that is private thinking (a
	// memgpt agent's text next to its tool calls).
	ThoughtsInText bool       `json:"thoughts_in_text,omitempty"`
	Reasoning      string     `json:"reasoning,omitempty"`
	ToolCalls      []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID     string     `json:"tool_call_id,omitempty"`
	ToolName       string     `json:"tool_name,omitempty"`
	ToolStatus     string     `json:"tool_status,omitempty"` // success or error
	// Stdout and Stderr are what a custom tool printed (the start of it).
	Stdout    string    `json:"stdout,omitempty"`
	Stderr    string    `json:"stderr,omitempty"`
	Otid      string    `json:"otid,omitempty"`
	Name      *string   `json:"name,omitempty"`
	SenderID  *string   `json:"sender_id,omitempty"`
	RunID     string    `json:"run_id,omitempty"`
	StepID    string    `json:"step_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Input marks a message the client sent: part of its turn but not of
	// the turn's response.
	Input bool `json:"input,omitempty"`
}

// ToolCall is a tool call as stored with its assistant message.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	// Client marks a call the client runs (a client tool): it waits for
	// the client's result, sent back as an approval reply.
	Client bool `json:"client,omitempty"`
	// Deferred marks a call of a custom tool: it runs in the sandbox after
	// its step commits, outside the agent's actor, and its result commits
	// in a later invocation. A crash in between leaves it without a result
	// until the agent's next turn answers it as interrupted: the call is
	// never run twice.
	Deferred bool `json:"deferred,omitempty"`
	// Approval marks a call of a server tool that needs the user's
	// approval first (a requires_approval rule): the turn stops for it, and
	// an approval reply runs it (then it is Deferred if custom) or refuses it.
	Approval bool `json:"approval,omitempty"`
}

// Waiting reports whether a call without a result waits for the client
// (its result, or its approval) rather than for the server.
func (tc ToolCall) Waiting() bool { return (tc.Client || tc.Approval) && !tc.Deferred }

// Run is a stored run: one turn of an agent.
type Run struct {
	ID             string     `json:"id"`
	AgentID        string     `json:"agent_id"`
	ConversationID string     `json:"conversation_id,omitempty"`
	Status         string     `json:"status"` // one of letta's Run statuses
	StopReason     string     `json:"stop_reason,omitempty"`
	Background     bool       `json:"background,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	CompletedAt    *time.Time `json:"completed_at,omitempty"`
	Usage          Usage      `json:"usage"`
	Error          string     `json:"error,omitempty"`
	// FirstSeq and LastSeq bound the run's messages (its inputs included):
	// turns of one agent never interleave, so they are contiguous.
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

// Finished reports whether the run has ended.
func (r *Run) Finished() bool {
	return r.Status != letta.RunRunning && r.Status != letta.RunCreated
}

// Usage is what a run stores of its token usage.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	Steps            int `json:"steps"`
	// ContextTokens is the estimated prompt size of the last step.
	ContextTokens int `json:"context_tokens,omitempty"`
}

// Statistics is the usage as Letta reports it.
func (u Usage) Statistics() letta.UsageStatistics {
	return letta.UsageStatistics{
		MessageType:      "usage_statistics",
		CompletionTokens: u.CompletionTokens,
		PromptTokens:     u.PromptTokens,
		TotalTokens:      u.PromptTokens + u.CompletionTokens,
		StepCount:        u.Steps,
	}
}

// Conversation is a stored conversation of an agent.
type Conversation struct {
	ID        string  `json:"id"`
	AgentID   string  `json:"agent_id"`
	Summary   *string `json:"summary"`
	LastRunID string  `json:"last_run_id,omitempty"`
	Context   Context `json:"context"`
	// ForkedFrom is the conversation (or, for the default conversation,
	// the agent) it was forked from: its context began with that one's
	// messages, which stay that one's.
	ForkedFrom string    `json:"forked_from,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Owner is the id of the agent or archive a passage belongs to: its
// place in Passages and PassageVectors.
func (p *Passage) Owner() string {
	if p.FolderID != "" {
		return p.FolderID
	}
	if p.ArchiveID != "" {
		return p.ArchiveID
	}
	return p.AgentID
}

// Passage is a stored archival memory passage.
type Passage struct {
	ID      string `json:"id"`
	AgentID string `json:"agent_id"` // "" for an archive's passage
	// ArchiveID is the shared archive the passage belongs to; "" for an
	// agent's own passage.
	ArchiveID string `json:"archive_id,omitempty"`
	// FolderID and FileID are the folder and file a chunk of a file belongs
	// to (see folders.go); "" for other passages.
	FolderID string   `json:"folder_id,omitempty"`
	FileID   string   `json:"file_id,omitempty"`
	Seq      uint64   `json:"seq"` // insertion order, from 1 per owner
	Text     string   `json:"text"`
	Tags     []string `json:"tags"`
	// Metadata is what the client attached to an archive's passage.
	Metadata map[string]any `json:"metadata,omitempty"`
	// Embedding is the model handle of the passage's vector (stored in
	// PassageVectors); "" if it has none.
	Embedding string    `json:"embedding,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}
