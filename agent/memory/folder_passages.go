package memory

import (
	"fmt"
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// InsertFilePassage stores a chunk of a folder's file as the folder's
// newest passage, with its embedding if emb is not nil.
func InsertFilePassage(txn kv.Txn, folderID, fileID, id, text string, emb *Embedded, now time.Time) (*schema.Passage, error) {
	return InsertPassageRecord(txn, &schema.Passage{ID: id, FolderID: folderID, FileID: fileID, Text: text, Tags: []string{}, CreatedAt: now, UpdatedAt: now}, emb)
}

// DeleteFilePassages deletes a file's passages with their vectors, vector
// index entries and id entries.
func DeleteFilePassages(txn kv.Txn, f *schema.File) error {
	kvs, err := txn.Scan(kv.PrefixRange(schema.PassagesOf(f.FolderID)), 0, false)
	if err != nil {
		return err
	}
	for _, p := range kvs {
		rec, err := schema.DecodePassage(p.Value)
		if err != nil {
			return fmt.Errorf("passage %q: %w", p.Key, err)
		}
		if rec.FileID != f.ID {
			continue
		}
		if err := DeletePassage(txn, f.FolderID, rec.ID); err != nil {
			return err
		}
	}
	return nil
}
