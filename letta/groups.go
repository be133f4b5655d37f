package letta

// Manager types of a group (Letta's ManagerType).
const (
	ManagerRoundRobin     = "round_robin"
	ManagerSupervisor     = "supervisor"
	ManagerDynamic        = "dynamic"
	ManagerSleeptime      = "sleeptime"
	ManagerVoiceSleeptime = "voice_sleeptime"
	ManagerSwarm          = "swarm"
)

// ManagerConfig is a group's manager configuration (Letta's
// ManagerConfigUnion, flattened: each manager type reads its own fields).
type ManagerConfig struct {
	ManagerType             string  `json:"manager_type"`
	ManagerAgentID          *string `json:"manager_agent_id,omitempty"`
	TerminationToken        *string `json:"termination_token,omitempty"`
	MaxTurns                *int    `json:"max_turns,omitempty"`
	SleeptimeAgentFrequency *int    `json:"sleeptime_agent_frequency,omitempty"`
	MaxMessageBufferLength  *int    `json:"max_message_buffer_length,omitempty"`
	MinMessageBufferLength  *int    `json:"min_message_buffer_length,omitempty"`
}

// GroupCreate is the body of POST /v1/groups (Letta's GroupCreate).
type GroupCreate struct {
	AgentIDs       []string       `json:"agent_ids"`
	Description    *string        `json:"description"`
	ManagerConfig  *ManagerConfig `json:"manager_config"`
	ProjectID      *string        `json:"project_id"`
	SharedBlockIDs []string       `json:"shared_block_ids"`
	Hidden         *bool          `json:"hidden"`
}

// GroupUpdate is the body of PATCH /v1/groups/{group_id}; nil fields are
// left as they are.
type GroupUpdate struct {
	AgentIDs       *[]string      `json:"agent_ids"`
	Description    *string        `json:"description"`
	ManagerConfig  *ManagerConfig `json:"manager_config"`
	ProjectID      *string        `json:"project_id"`
	SharedBlockIDs *[]string      `json:"shared_block_ids"`
}

// Group is a group as the API renders it (Letta's Group).
type Group struct {
	ID                      string   `json:"id"`
	ManagerType             string   `json:"manager_type"`
	AgentIDs                []string `json:"agent_ids"`
	Description             string   `json:"description"`
	ProjectID               *string  `json:"project_id"`
	TemplateID              *string  `json:"template_id"`
	BaseTemplateID          *string  `json:"base_template_id"`
	DeploymentID            *string  `json:"deployment_id"`
	SharedBlockIDs          []string `json:"shared_block_ids"`
	ManagerAgentID          *string  `json:"manager_agent_id"`
	TerminationToken        *string  `json:"termination_token"`
	MaxTurns                *int     `json:"max_turns"`
	SleeptimeAgentFrequency *int     `json:"sleeptime_agent_frequency"`
	TurnsCounter            *int     `json:"turns_counter"`
	LastProcessedMessageID  *string  `json:"last_processed_message_id"`
	MaxMessageBufferLength  *int     `json:"max_message_buffer_length"`
	MinMessageBufferLength  *int     `json:"min_message_buffer_length"`
	Hidden                  *bool    `json:"hidden"`
}
