package letta

// Block is a memory block (Letta's BlockResponse).
type Block struct {
	Value               string         `json:"value"`
	Limit               int            `json:"limit"`
	ProjectID           *string        `json:"project_id"`
	TemplateName        *string        `json:"template_name"`
	IsTemplate          bool           `json:"is_template"`
	TemplateID          *string        `json:"template_id"`
	BaseTemplateID      *string        `json:"base_template_id"`
	DeploymentID        *string        `json:"deployment_id"`
	EntityID            *string        `json:"entity_id"`
	PreserveOnMigration bool           `json:"preserve_on_migration"`
	Label               string         `json:"label"`
	ReadOnly            bool           `json:"read_only"`
	Description         *string        `json:"description"`
	Metadata            map[string]any `json:"metadata"`
	Hidden              *bool          `json:"hidden"`
	ID                  string         `json:"id"`
	CreatedByID         *string        `json:"created_by_id"`
	LastUpdatedByID     *string        `json:"last_updated_by_id"`
	Tags                []string       `json:"tags"`
}

// CreateBlock is the body of POST /v1/blocks and each of CreateAgent's
// memory_blocks.
type CreateBlock struct {
	Label               *string        `json:"label"`
	Value               *string        `json:"value"`
	Limit               *int           `json:"limit"`
	Description         *string        `json:"description"`
	Metadata            map[string]any `json:"metadata"`
	ReadOnly            bool           `json:"read_only"`
	Hidden              *bool          `json:"hidden"`
	ProjectID           *string        `json:"project_id"`
	IsTemplate          bool           `json:"is_template"`
	TemplateName        *string        `json:"template_name"`
	PreserveOnMigration bool           `json:"preserve_on_migration"`
	Tags                []string       `json:"tags"`
}

// BlockUpdate is the body of the block PATCH routes. Absent or null fields
// are left unchanged.
type BlockUpdate struct {
	Value        *string         `json:"value"`
	Limit        *int            `json:"limit"`
	Label        *string         `json:"label"`
	Description  *string         `json:"description"`
	Metadata     *map[string]any `json:"metadata"`
	ReadOnly     *bool           `json:"read_only"`
	Hidden       *bool           `json:"hidden"`
	ProjectID    *string         `json:"project_id"`
	IsTemplate   *bool           `json:"is_template"`
	TemplateName *string         `json:"template_name"`
	Tags         *[]string       `json:"tags"`
}
