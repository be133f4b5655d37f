package agent

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Archives is the surface of shared archives: passages that several agents
// search as part of their archival memory. Passages are embedded before
// the archive's actor commits them, as an agent's are.
type Archives struct{ c *core }

// Limits of archives.
const (
	DefaultArchiveListLimit = 50
	MaxArchiveNameChars     = 255
	// MaxArchivePassageBatch is how many passages one batch create adds.
	MaxArchivePassageBatch = 256
)

// Operations of the archive actor.
const (
	opCreateArchive         = "create"
	opUpdateArchive         = "update"
	opDeleteArchive         = "delete"
	opInsertArchivePassages = "insert_passages"
	opDeleteArchivePassage  = "delete_passage"
)

var archiveOps = map[string]func(call *actor.Call) ([]byte, error){
	opCreateArchive:         createArchiveOp,
	opUpdateArchive:         updateArchiveOp,
	opDeleteArchive:         deleteArchiveOp,
	opInsertArchivePassages: insertArchivePassagesOp,
	opDeleteArchivePassage:  deleteArchivePassageOp,
}

// archiveActor serialises operations on one archive. Like toolActor it
// keeps no state: the archive lives at its keys.
type archiveActor struct{}

func (archiveActor) Decode(actor.ID, []byte) (any, error) { return nil, nil }
func (archiveActor) Encode(any) ([]byte, error)           { return nil, nil }

func (archiveActor) Invoke(_ context.Context, call *actor.Call) ([]byte, error) {
	truncateNow(call)
	fn, ok := archiveOps[call.Op]
	if !ok {
		return nil, fmt.Errorf("archive actor: unknown operation %q", call.Op)
	}
	return fn(call)
}

// Create creates an archive whose passages are embedded with its embedding
// handle (embedding, else embedding_config, else the default).
func (s *Archives) Create(ctx context.Context, req letta.ArchiveCreateRequest) (*letta.Archive, error) {
	if req.Name == nil {
		return nil, letta.Invalidf("name is required")
	}
	if err := letta.CheckChars("name", *req.Name, MaxArchiveNameChars); err != nil {
		return nil, err
	}
	handle := memory.DefaultEmbedding
	switch {
	case req.Embedding != nil:
		handle = *req.Embedding
	case req.EmbeddingConfig != nil:
		handle = memory.EmbeddingHandle(&schema.Agent{EmbeddingConfig: req.EmbeddingConfig})
	}
	if _, err := embeddingConfigFor(handle); err != nil {
		return nil, err
	}
	id, err := s.c.newIDFor(ctx, "archive")
	if err != nil {
		return nil, err
	}
	rec := schema.Archive{ID: id, Name: *req.Name, Description: req.Description, Embedding: handle, Metadata: map[string]any{}}
	var out letta.Archive
	err = s.c.invoke(ctx, schema.ArchiveActor(id), opCreateArchive, rec, &out)
	return &out, err
}

func createArchiveOp(call *actor.Call) ([]byte, error) {
	rec, err := decodePayload[schema.Archive](call)
	if err != nil {
		return nil, err
	}
	if _, err := schema.GetArchive(call.Txn, rec.ID); err == nil {
		return nil, letta.Conflictf("archive %s already exists", rec.ID)
	}
	rec.CreatedAt, rec.UpdatedAt = call.Now, call.Now
	if err := schema.PutArchive(call.Txn, &rec, true); err != nil {
		return nil, err
	}
	return schema.Encode(renderArchive(&rec))
}

// Get reads an archive.
func (s *Archives) Get(ctx context.Context, id string) (*letta.Archive, error) {
	return readRecord(ctx, s.c, "archive_id", "archive", id, schema.GetArchive, renderArchive)
}

// ArchiveFilter narrows a listing of archives.
type ArchiveFilter struct {
	Name    string // exact; "" for any
	AgentID string // only those attached to it; "" for any
}

var archiveIndex = index[*schema.Archive]{
	prefix: schema.ArchiveIndex.Prefix, idPrefix: "archive", get: schema.GetArchive,
	created: func(r *schema.Archive) time.Time { return r.CreatedAt },
}

// List lists archives by creation time.
func (s *Archives) List(ctx context.Context, f ArchiveFilter, p letta.Page) ([]*letta.Archive, error) {
	p, err := checkPage(p, DefaultArchiveListLimit)
	if err != nil {
		return nil, err
	}
	out := []*letta.Archive{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		var attached []string
		if f.AgentID != "" {
			if attached, err = schema.AgentArchiveIDs(txn, f.AgentID); err != nil {
				return err
			}
		}
		return listIndex(txn, archiveIndex, p, func(r *schema.Archive) (bool, error) {
			if f.Name != "" && r.Name != f.Name || f.AgentID != "" && !slices.Contains(attached, r.ID) {
				return true, nil
			}
			out = append(out, renderArchive(r))
			return len(out) < p.Limit, nil
		})
	})
	return out, err
}

// Update renames an archive or changes its description.
func (s *Archives) Update(ctx context.Context, id string, req letta.ArchiveUpdateRequest) (*letta.Archive, error) {
	if err := letta.CheckID("archive_id", "archive", id); err != nil {
		return nil, err
	}
	if req.Name != nil {
		if err := letta.CheckChars("name", *req.Name, MaxArchiveNameChars); err != nil {
			return nil, err
		}
	}
	var out letta.Archive
	err := s.c.invoke(ctx, schema.ArchiveActor(id), opUpdateArchive, req, &out)
	return &out, err
}

func updateArchiveOp(call *actor.Call) ([]byte, error) {
	req, err := decodePayload[letta.ArchiveUpdateRequest](call)
	if err != nil {
		return nil, err
	}
	a, err := schema.GetArchive(call.Txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	if req.Name != nil {
		a.Name = *req.Name
	}
	if req.Description != nil {
		a.Description = req.Description
	}
	a.UpdatedAt = call.Now
	if err := schema.PutArchive(call.Txn, a, false); err != nil {
		return nil, err
	}
	return schema.Encode(renderArchive(a))
}

// Delete deletes an archive with its passages and detaches it from its
// agents.
func (s *Archives) Delete(ctx context.Context, id string) error {
	if err := letta.CheckID("archive_id", "archive", id); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.ArchiveActor(id), opDeleteArchive, nil, nil)
}

func deleteArchiveOp(call *actor.Call) ([]byte, error) {
	a, err := schema.GetArchive(call.Txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	return nil, schema.DeleteArchive(call.Txn, a)
}

// Agents lists the agents an archive is attached to, in id order.
func (s *Archives) Agents(ctx context.Context, id string, p letta.Page, withBlocks bool) ([]*letta.AgentState, error) {
	of := linkedTo{"archive_id", "archive", func(txn kv.Txn, id string) error {
		_, err := schema.GetArchive(txn, id)
		return err
	}}
	return listLinked(ctx, s.c, of, id, p, schema.ArchiveAgentIDs, func(txn kv.Txn, agentID string) (*letta.AgentState, error) {
		a, err := schema.GetAgent(txn, agentID)
		if err != nil {
			return nil, err
		}
		return loadAgent(txn, a, withBlocks)
	})
}

func renderArchive(a *schema.Archive) *letta.Archive {
	cfg, err := embeddingConfigFor(a.Embedding)
	if err != nil {
		cfg = nil // a handle stored by an older rule: shown without a config
	}
	return &letta.Archive{
		ID: a.ID, Name: a.Name, Description: a.Description, OrganizationID: letta.DefaultOrgID,
		VectorDBProvider: "native", EmbeddingConfig: cfg, Metadata: nonNilMap(a.Metadata),
		CreatedAt: letta.Timestamp{Time: a.CreatedAt}, UpdatedAt: letta.Timestamp{Time: a.UpdatedAt},
	}
}
