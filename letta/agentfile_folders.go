package letta

// AgentFileSource is a folder of an agent file (Letta's SourceSchema): a
// folder create request under the file's id ("source-0").
type AgentFileSource struct {
	ID                 string           `json:"id"`
	Name               string           `json:"name"`
	Description        *string          `json:"description"`
	Instructions       *string          `json:"instructions"`
	Metadata           map[string]any   `json:"metadata"`
	Embedding          *string          `json:"embedding"`
	EmbeddingChunkSize *int             `json:"embedding_chunk_size"`
	EmbeddingConfig    *EmbeddingConfig `json:"embedding_config"`
}

// AgentFileFile is a file of an agent file (Letta's FileSchema): its
// metadata and its text (content), under the file's ids. Its file_name is
// "<folder name>/<name>", as Letta names a folder's files.
type AgentFileFile struct {
	ID                   string  `json:"id"`
	SourceID             string  `json:"source_id"`
	FileName             *string `json:"file_name"`
	OriginalFileName     *string `json:"original_file_name"`
	FilePath             *string `json:"file_path"`
	FileType             *string `json:"file_type"`
	FileSize             *int64  `json:"file_size"`
	FileCreationDate     *string `json:"file_creation_date"`
	FileLastModifiedDate *string `json:"file_last_modified_date"`
	ProcessingStatus     string  `json:"processing_status"`
	ErrorMessage         *string `json:"error_message"`
	TotalChunks          *int    `json:"total_chunks"`
	ChunksEmbedded       *int    `json:"chunks_embedded"`
	Content              *string `json:"content"`
}

// AgentFileFileAgent is an agent's view of a file in an agent file
// (Letta's FileAgentSchema); agent_id, file_id and source_id are the
// file's ids, id the view's own.
type AgentFileFileAgent struct {
	ID             string     `json:"id"`
	AgentID        string     `json:"agent_id"`
	FileID         string     `json:"file_id"`
	SourceID       string     `json:"source_id"`
	FileName       string     `json:"file_name"`
	IsOpen         bool       `json:"is_open"`
	VisibleContent *string    `json:"visible_content"`
	LastAccessedAt *Timestamp `json:"last_accessed_at"`
	StartLine      *int       `json:"start_line"`
	EndLine        *int       `json:"end_line"`
}
