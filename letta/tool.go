package letta

// Tool is a tool as the API renders it (Letta's Tool): a built-in one or a
// custom one made from Python source.
type Tool struct {
	ID                      string         `json:"id"`
	ToolType                string         `json:"tool_type"`
	Description             *string        `json:"description"`
	SourceType              *string        `json:"source_type"`
	Name                    string         `json:"name"`
	Tags                    []string       `json:"tags"`
	SourceCode              *string        `json:"source_code"`
	JSONSchema              map[string]any `json:"json_schema"`
	ArgsJSONSchema          map[string]any `json:"args_json_schema"`
	ReturnCharLimit         int            `json:"return_char_limit"`
	PipRequirements         []any          `json:"pip_requirements"`
	NpmRequirements         []any          `json:"npm_requirements"`
	DefaultRequiresApproval *bool          `json:"default_requires_approval"`
	EnableParallelExecution bool           `json:"enable_parallel_execution"`
	CreatedByID             *string        `json:"created_by_id"`
	LastUpdatedByID         *string        `json:"last_updated_by_id"`
	Metadata                map[string]any `json:"metadata_"`
	ProjectID               *string        `json:"project_id"`
}

// Tool types (Letta's ToolType) Kelpie serves.
const (
	ToolTypeCustom = "custom"
)

// Limits of tools, Letta's where it has them.
const (
	DefaultReturnCharLimit = 50_000    // characters of a tool's result the model sees
	MaxReturnCharLimit     = 1_000_000 // the largest return_char_limit Letta accepts
	MaxToolNameChars       = 64        // OpenAI's limit on a function name
	MaxSourceCodeChars     = 1 << 20   // of a tool's source code
)

// ToolCreate is the body of POST and PUT /v1/tools (Letta's ToolCreate).
type ToolCreate struct {
	Description             *string        `json:"description"`
	Tags                    []string       `json:"tags"`
	SourceCode              *string        `json:"source_code"`
	SourceType              *string        `json:"source_type"`
	JSONSchema              map[string]any `json:"json_schema"`
	ArgsJSONSchema          map[string]any `json:"args_json_schema"`
	ReturnCharLimit         *int           `json:"return_char_limit"`
	PipRequirements         []any          `json:"pip_requirements"`
	NpmRequirements         []any          `json:"npm_requirements"`
	DefaultRequiresApproval *bool          `json:"default_requires_approval"`
	EnableParallelExecution *bool          `json:"enable_parallel_execution"`
}

// ToolUpdate is the body of PATCH /v1/tools/{tool_id} (Letta's
// ToolUpdate); nil fields are left as they are.
type ToolUpdate struct {
	Description             *string         `json:"description"`
	Tags                    *[]string       `json:"tags"`
	SourceCode              *string         `json:"source_code"`
	SourceType              *string         `json:"source_type"`
	JSONSchema              map[string]any  `json:"json_schema"`
	ArgsJSONSchema          map[string]any  `json:"args_json_schema"`
	ReturnCharLimit         *int            `json:"return_char_limit"`
	PipRequirements         *[]any          `json:"pip_requirements"`
	NpmRequirements         *[]any          `json:"npm_requirements"`
	Metadata                *map[string]any `json:"metadata_"`
	DefaultRequiresApproval *bool           `json:"default_requires_approval"`
	EnableParallelExecution *bool           `json:"enable_parallel_execution"`
}

// ToolRunFromSource is the body of POST /v1/tools/run.
type ToolRunFromSource struct {
	SourceCode *string           `json:"source_code"`
	Args       map[string]any    `json:"args"`
	EnvVars    map[string]string `json:"env_vars"`
	Name       *string           `json:"name"`
	SourceType *string           `json:"source_type"`
	JSONSchema map[string]any    `json:"json_schema"`
}

// ToolRunRequest is the body of POST /v1/agents/{agent_id}/tools/{name}/run.
type ToolRunRequest struct {
	Args map[string]any `json:"args"`
}
