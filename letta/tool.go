package letta

// Tool is a tool as the API lists it (Letta's Tool), for the built-in
// tools.
type Tool struct {
	ID                      string         `json:"id"`
	ToolType                string         `json:"tool_type"`
	Description             *string        `json:"description"`
	SourceType              *string        `json:"source_type"`
	Name                    string         `json:"name"`
	Tags                    []string       `json:"tags"`
	SourceCode              *string        `json:"source_code"`
	JSONSchema              map[string]any `json:"json_schema"`
	ArgsJSONSchema          any            `json:"args_json_schema"`
	ReturnCharLimit         int            `json:"return_char_limit"`
	PipRequirements         any            `json:"pip_requirements"`
	NpmRequirements         any            `json:"npm_requirements"`
	DefaultRequiresApproval *bool          `json:"default_requires_approval"`
	EnableParallelExecution bool           `json:"enable_parallel_execution"`
	CreatedByID             *string        `json:"created_by_id"`
	LastUpdatedByID         *string        `json:"last_updated_by_id"`
	Metadata                map[string]any `json:"metadata_"`
	ProjectID               *string        `json:"project_id"`
}
