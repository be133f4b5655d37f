package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/files"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Limits of the background processing of uploads.
const (
	// MaxConcurrentIngests is how many files are processed at once.
	MaxConcurrentIngests = 2
	// IngestBatchChunks is how many passages of a file one commit adds
	// (and one embeddings request carries), so that a crash loses at most
	// one batch of work and no commit grows with the file.
	IngestBatchChunks = 64
	// MaxIngestAttempts is how often a step of processing that met a
	// retryable error (a concurrent commit, a busy actor) is tried.
	MaxIngestAttempts = 5
	// IngestRetryPause is the first pause before a retry; it doubles.
	IngestRetryPause = 50 * time.Millisecond
)

// ingester processes uploads in the background: each file from the state
// its record is in (parsing, then embedding from the chunks already
// stored), each step committed. A file it is stopped in the middle of
// keeps its pending entry, and the next start resumes it.
type ingester struct {
	c      *core
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  chan struct{}
	mu     sync.Mutex
	active map[string]bool
}

// startIngest starts the ingester and resumes the files a previous run
// left unfinished.
func startIngest(c *core) *ingester {
	ctx, cancel := context.WithCancel(context.Background())
	in := &ingester{c: c, ctx: ctx, cancel: cancel, slots: make(chan struct{}, MaxConcurrentIngests), active: map[string]bool{}}
	in.wg.Go(func() {
		var ids []string
		err := c.read(ctx, func(txn kv.Txn) (err error) {
			ids, err = schema.PendingFileIDs(txn)
			return err
		})
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("folders: could not list the files left unprocessed", "err", err)
			}
			return
		}
		for _, id := range ids {
			in.start(id)
		}
	})
	return in
}

// start processes a file in the background, unless it is being processed.
func (in *ingester) start(fileID string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.active[fileID] || in.ctx.Err() != nil {
		return
	}
	in.active[fileID] = true
	in.wg.Go(func() {
		defer func() {
			in.mu.Lock()
			delete(in.active, fileID)
			in.mu.Unlock()
		}()
		select {
		case in.slots <- struct{}{}:
		case <-in.ctx.Done():
			return
		}
		defer func() { <-in.slots }()
		in.process(fileID)
	})
}

// stop stops processing and waits for the files in progress to stop.
func (in *ingester) stop() {
	in.cancel()
	in.wg.Wait()
}

// process brings a file to completed or error. A failure of the service
// itself (stopping, storage down) leaves the file pending for a later run.
func (in *ingester) process(fileID string) {
	err := in.run(fileID)
	if err == nil || in.ctx.Err() != nil {
		return
	}
	if !isFileFault(err) {
		in.c.log.Warn("folders: processing a file stopped; it resumes at the next start", "file", fileID, "err", err)
		return
	}
	msg := err.Error()
	if e, ok := err.(*fileFault); ok {
		msg = e.msg
	}
	if err := in.invoke(fileID, opFileFailed, fileFailed{FileID: fileID, Message: msg}); err != nil && in.ctx.Err() == nil {
		in.c.log.Warn("folders: could not record a file's failure", "file", fileID, "err", err)
	}
}

// fileFault is a failure of the file itself (unreadable, not embeddable):
// the file ends in error with msg.
type fileFault struct{ msg string }

func (e *fileFault) Error() string { return e.msg }

func isFileFault(err error) bool { _, ok := err.(*fileFault); return ok }

// run does what is left of a file's processing.
func (in *ingester) run(fileID string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &fileFault{msg: fmt.Sprintf("processing failed: %v", r)}
		}
	}()
	f, folder, data, err := in.load(fileID)
	if err != nil || f == nil || f.Terminal() {
		return err
	}
	if f.Status == letta.FileParsing || f.Status == letta.FilePending {
		text, err := files.ExtractWith(in.ctx, in.c.ocr, f.FileType, data)
		if err != nil {
			return &fileFault{msg: err.Error()}
		}
		chunks := files.Passages(text, folder.ChunkSize)
		if err := in.invoke(fileID, opFileParsed, fileParsed{FileID: fileID, Text: text, Chunks: len(chunks)}); err != nil {
			return err
		}
		return in.embed(f, folder, chunks, 0)
	}
	var text string
	if err := in.c.read(in.ctx, func(txn kv.Txn) (err error) {
		text, err = schema.GetFileText(txn, fileID)
		return err
	}); err != nil {
		return err
	}
	done := 0
	if f.ChunksEmbedded != nil {
		done = *f.ChunksEmbedded
	}
	return in.embed(f, folder, files.Passages(text, folder.ChunkSize), done)
}

// load reads a file, its folder and its upload (nil once parsed); a file
// deleted since is nil.
func (in *ingester) load(fileID string) (f *schema.File, folder *schema.Folder, data []byte, err error) {
	err = in.c.read(in.ctx, func(txn kv.Txn) error {
		if f, err = schema.GetFile(txn, fileID); err != nil {
			return err
		}
		if folder, err = schema.GetFolder(txn, f.FolderID); err != nil {
			return err
		}
		data, err = txn.Get(schema.FileUploadKey(fileID))
		if errors.Is(err, kv.ErrNotFound) {
			data, err = nil, nil
		}
		return err
	})
	if letta.KindOf(err) == letta.KindNotFound {
		return nil, nil, nil, nil
	}
	return f, folder, data, err
}

// embed embeds a file's chunks from the done-th on and stores them, a
// batch per commit; the last commit completes the file.
func (in *ingester) embed(f *schema.File, folder *schema.Folder, chunks []string, done int) error {
	for start := done; start < len(chunks); start += IngestBatchChunks {
		batch := chunks[start:min(start+IngestBatchChunks, len(chunks))]
		embs, _, err := memory.Embed(in.ctx, in.c.embedder, folder.Embedding, batch)
		if err != nil {
			return &fileFault{msg: err.Error()}
		}
		p := fileChunks{FileID: f.ID, Start: start, Passages: make([]passagePayload, len(batch))}
		for i, text := range batch {
			p.Passages[i].ID = letta.DerivedID("passage", "file", f.ID, fmt.Sprint(start+i))
			p.Passages[i].Text = text
			if embs != nil {
				p.Passages[i].Embedded = embs[i]
			}
		}
		if err := in.invoke(f.ID, opFileChunks, p); err != nil {
			return err
		}
	}
	return nil
}

// invoke runs a step of processing on the file's folder, retrying what a
// concurrent commit or a busy actor refused.
func (in *ingester) invoke(fileID, op string, payload any) error {
	var folderID string
	if err := in.c.read(in.ctx, func(txn kv.Txn) error {
		f, err := schema.GetFile(txn, fileID)
		if err == nil {
			folderID = f.FolderID
		}
		return err
	}); err != nil {
		return err
	}
	pause := IngestRetryPause
	for attempt := 1; ; attempt++ {
		err := in.c.invoke(WithIdempotencyKey(in.ctx, ""), schema.FolderActor(folderID), op, payload, nil)
		k := letta.KindOf(err)
		if err == nil || attempt == MaxIngestAttempts || k != letta.KindContended && k != letta.KindBusy {
			return err
		}
		select {
		case <-in.c.clock.After(pause):
		case <-in.ctx.Done():
			return in.ctx.Err()
		}
		pause *= 2
	}
}

// Payloads of the processing steps.
type (
	fileParsed struct {
		FileID string `json:"file_id"`
		Text   string `json:"text"`
		Chunks int    `json:"chunks"`
	}
	fileChunks struct {
		FileID   string           `json:"file_id"`
		Start    int              `json:"start"`
		Passages []passagePayload `json:"passages"`
	}
	fileFailed struct {
		FileID  string `json:"file_id"`
		Message string `json:"message"`
	}
)

// fileParsedOp stores a file's text, moves it to embedding (or completed,
// with nothing to embed) and opens it for the agents its folder is
// attached to. A step already taken changes nothing.
func fileParsedOp(call *actor.Call) ([]byte, error) {
	p, err := decodePayload[fileParsed](call)
	if err != nil {
		return nil, err
	}
	f, err := schema.GetFile(call.Txn, p.FileID)
	if err != nil || f.Status != letta.FileParsing && f.Status != letta.FilePending {
		return nil, ignoreMissing(err)
	}
	if err := call.Txn.Set(schema.FileTextKey(f.ID), []byte(p.Text)); err != nil {
		return nil, err
	}
	if err := call.Txn.Delete(schema.FileUploadKey(f.ID)); err != nil {
		return nil, err
	}
	f.Status, f.TotalChunks, f.ChunksEmbedded, f.UpdatedAt = letta.FileEmbedding, new(p.Chunks), new(0), call.Now
	if p.Chunks == 0 {
		f.Status = letta.FileCompleted
	}
	if err := schema.PutFile(call.Txn, f, false); err != nil {
		return nil, err
	}
	return nil, openForAgents(call, f)
}

// openForAgents opens a newly parsed file for every agent its folder is
// attached to, as Letta does.
func openForAgents(call *actor.Call, f *schema.File) error {
	folder, err := schema.GetFolder(call.Txn, f.FolderID)
	if err != nil {
		return err
	}
	agents, err := schema.FolderAgentIDs(call.Txn, f.FolderID)
	if err != nil {
		return err
	}
	for _, agentID := range agents {
		a, err := schema.GetAgent(call.Txn, agentID)
		if err != nil {
			return err
		}
		view, err := files.ViewOf(call.Txn, f, -1, -1)
		if err != nil {
			return err
		}
		if _, _, err := files.Open(call.Txn, a, files.Opening{File: f, FolderName: folder.Name, Visible: view}, call.Now); err != nil {
			return err
		}
	}
	return nil
}

// fileChunksOp stores a batch of a file's passages; the last completes the
// file. A batch already stored changes nothing.
func fileChunksOp(call *actor.Call) ([]byte, error) {
	p, err := decodePayload[fileChunks](call)
	if err != nil {
		return nil, err
	}
	f, err := schema.GetFile(call.Txn, p.FileID)
	if err != nil || f.Status != letta.FileEmbedding || f.ChunksEmbedded == nil || *f.ChunksEmbedded != p.Start {
		return nil, ignoreMissing(err)
	}
	for _, ps := range p.Passages {
		if _, err := memory.InsertFilePassage(call.Txn, f.FolderID, f.ID, ps.ID, ps.Text, ps.Embedded, call.Now); err != nil {
			return nil, err
		}
	}
	f.ChunksEmbedded, f.UpdatedAt = new(p.Start+len(p.Passages)), call.Now
	if *f.ChunksEmbedded >= *f.TotalChunks {
		f.Status = letta.FileCompleted
	}
	return nil, schema.PutFile(call.Txn, f, false)
}

// fileFailedOp ends a file's processing in error, without the passages it
// got so far.
func fileFailedOp(call *actor.Call) ([]byte, error) {
	p, err := decodePayload[fileFailed](call)
	if err != nil {
		return nil, err
	}
	f, err := schema.GetFile(call.Txn, p.FileID)
	if err != nil || f.Terminal() {
		return nil, ignoreMissing(err)
	}
	if err := memory.DeleteFilePassages(call.Txn, f); err != nil {
		return nil, err
	}
	f.Status, f.ErrorMessage, f.ChunksEmbedded, f.UpdatedAt = letta.FileError, p.Message, new(0), call.Now
	return nil, schema.PutFile(call.Txn, f, false)
}

// ignoreMissing treats a file deleted while it was processed as done.
func ignoreMissing(err error) error {
	if letta.KindOf(err) == letta.KindNotFound {
		return nil
	}
	return err
}
