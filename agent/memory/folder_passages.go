package memory

import (
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// InsertFilePassage stores a chunk of a folder's file as the folder's
// newest passage, with its embedding if emb is not nil.
func InsertFilePassage(txn kv.Txn, folderID, fileID, id, text string, emb *Embedded, now time.Time) (*schema.Passage, error) {
	return insertPassage(txn, &schema.Passage{ID: id, FolderID: folderID, FileID: fileID, Text: text, Tags: []string{}, CreatedAt: now, UpdatedAt: now}, emb)
}
