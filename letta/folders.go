package letta

// Folder is a folder of files (Letta's Folder, and Source under
// /v1/sources): its files' text is chunked into passages that the agents
// it is attached to search.
type Folder struct {
	ID               string           `json:"id"`
	Name             string           `json:"name"`
	Description      *string          `json:"description"`
	Instructions     *string          `json:"instructions"`
	Metadata         map[string]any   `json:"metadata"`
	EmbeddingConfig  *EmbeddingConfig `json:"embedding_config"`
	OrganizationID   string           `json:"organization_id"`
	VectorDBProvider string           `json:"vector_db_provider"`
	CreatedByID      *string          `json:"created_by_id"`
	LastUpdatedByID  *string          `json:"last_updated_by_id"`
	CreatedAt        Timestamp        `json:"created_at"`
	UpdatedAt        Timestamp        `json:"updated_at"`
}

// FolderCreate is the body of POST /v1/folders.
type FolderCreate struct {
	Name               *string          `json:"name"`
	Description        *string          `json:"description"`
	Instructions       *string          `json:"instructions"`
	Metadata           map[string]any   `json:"metadata"`
	Embedding          *string          `json:"embedding"`
	EmbeddingChunkSize *int             `json:"embedding_chunk_size"`
	EmbeddingConfig    *EmbeddingConfig `json:"embedding_config"`
}

// FolderUpdate is the body of PATCH /v1/folders/{id}.
type FolderUpdate struct {
	Name         *string        `json:"name"`
	Description  *string        `json:"description"`
	Instructions *string        `json:"instructions"`
	Metadata     map[string]any `json:"metadata"`
}

// File processing statuses (Letta's FileProcessingStatus).
const (
	FilePending   = "pending"
	FileParsing   = "parsing"
	FileEmbedding = "embedding"
	FileCompleted = "completed"
	FileError     = "error"
)

// FileMetadata is a file of a folder (Letta's FileMetadata).
type FileMetadata struct {
	ID                   string    `json:"id"`
	SourceID             string    `json:"source_id"`
	FileName             *string   `json:"file_name"`
	OriginalFileName     *string   `json:"original_file_name"`
	FilePath             *string   `json:"file_path"`
	FileType             *string   `json:"file_type"`
	FileSize             *int64    `json:"file_size"`
	FileCreationDate     *string   `json:"file_creation_date"`
	FileLastModifiedDate *string   `json:"file_last_modified_date"`
	ProcessingStatus     string    `json:"processing_status"`
	ErrorMessage         *string   `json:"error_message"`
	TotalChunks          *int      `json:"total_chunks"`
	ChunksEmbedded       *int      `json:"chunks_embedded"`
	Content              *string   `json:"content"`
	OrganizationID       string    `json:"organization_id"`
	CreatedAt            Timestamp `json:"created_at"`
	UpdatedAt            Timestamp `json:"updated_at"`
}

// AgentFileAttachment is a file as an agent sees it (open or closed).
type AgentFileAttachment struct {
	ID             string     `json:"id"`
	FileID         string     `json:"file_id"`
	FileName       string     `json:"file_name"`
	FolderID       string     `json:"folder_id"`
	FolderName     string     `json:"folder_name"`
	IsOpen         bool       `json:"is_open"`
	LastAccessedAt *Timestamp `json:"last_accessed_at"`
	VisibleContent *string    `json:"visible_content"`
	StartLine      *int       `json:"start_line"`
	EndLine        *int       `json:"end_line"`
}

// PaginatedAgentFiles is the answer of GET /v1/agents/{id}/files.
type PaginatedAgentFiles struct {
	Files      []AgentFileAttachment `json:"files"`
	NextCursor *string               `json:"next_cursor"`
	HasMore    bool                  `json:"has_more"`
}

// FileStats is one file of FolderStats.
type FileStats struct {
	FileID   string `json:"file_id"`
	FileName string `json:"file_name"`
	FileSize *int64 `json:"file_size"`
}

// FolderStats is one folder of FoldersMetadata.
type FolderStats struct {
	SourceID   string      `json:"source_id"`
	SourceName string      `json:"source_name"`
	FileCount  int         `json:"file_count"`
	TotalSize  int64       `json:"total_size"`
	Files      []FileStats `json:"files"`
}

// FoldersMetadata is the answer of GET /v1/folders/metadata (Letta's
// OrganizationSourcesStats).
type FoldersMetadata struct {
	TotalSources int           `json:"total_sources"`
	TotalFiles   int           `json:"total_files"`
	TotalSize    int64         `json:"total_size"`
	Sources      []FolderStats `json:"sources"`
}
