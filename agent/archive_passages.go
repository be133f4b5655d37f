package agent

import (
	"context"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// archivePassage is one passage of opInsertArchivePassages, embedded
// before the invocation.
type archivePassage struct {
	passagePayload
	Metadata  map[string]any `json:"metadata,omitempty"`
	CreatedAt *time.Time     `json:"created_at,omitempty"`
}

// CreatePassages adds passages to an archive, embedded with the archive's
// model first (outside its actor), all in one commit.
func (s *Archives) CreatePassages(ctx context.Context, archiveID string, reqs []letta.ArchivePassageCreate) ([]letta.Passage, error) {
	if err := letta.CheckID("archive_id", "archive", archiveID); err != nil {
		return nil, err
	}
	if len(reqs) == 0 || len(reqs) > MaxArchivePassageBatch {
		return nil, letta.Invalidf("passages: want 1 to %d, got %d", MaxArchivePassageBatch, len(reqs))
	}
	ps := make([]archivePassage, len(reqs))
	texts := make([]string, len(reqs))
	for i, r := range reqs {
		if r.Text == nil {
			return nil, letta.Invalidf("passages[%d].text is required", i)
		}
		if err := memory.CheckPassage(*r.Text, r.Tags); err != nil {
			return nil, err
		}
		if err := letta.CheckMetadata(r.Metadata); err != nil {
			return nil, err
		}
		ps[i].Text, ps[i].Tags, ps[i].Metadata, texts[i] = *r.Text, r.Tags, r.Metadata, *r.Text
		if r.CreatedAt != nil {
			t, err := time.Parse(time.RFC3339Nano, *r.CreatedAt)
			if err != nil {
				return nil, letta.Invalidf("passages[%d].created_at %q is not an ISO 8601 time", i, letta.Clip(*r.CreatedAt))
			}
			ps[i].CreatedAt = &t
		}
	}
	var a *schema.Archive
	if err := s.c.read(ctx, func(txn kv.Txn) (err error) {
		a, err = schema.GetArchive(txn, archiveID)
		return err
	}); err != nil {
		return nil, err
	}
	embs, _, err := memory.Embed(ctx, s.c.embedder, a.Embedding, texts)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		if ps[i].ID, err = s.c.newIDFor(ctx, "passage"); err != nil {
			return nil, err
		}
		if embs != nil {
			ps[i].Embedded = embs[i]
		}
	}
	var out []letta.Passage
	err = s.c.invoke(ctx, schema.ArchiveActor(archiveID), opInsertArchivePassages, ps, &out)
	return out, err
}

func insertArchivePassagesOp(call *actor.Call) ([]byte, error) {
	ps, err := decodePayload[[]archivePassage](call)
	if err != nil {
		return nil, err
	}
	if _, err := schema.GetArchive(call.Txn, call.ID.Key); err != nil {
		return nil, err
	}
	out := make([]letta.Passage, len(ps))
	for i, p := range ps {
		at := call.Now
		if p.CreatedAt != nil {
			at = p.CreatedAt.UTC()
		}
		rec, err := memory.InsertPassageRecord(call.Txn, &schema.Passage{ID: p.ID, ArchiveID: call.ID.Key, Text: p.Text, Tags: p.Tags,
			Metadata: p.Metadata, CreatedAt: at, UpdatedAt: at}, p.Embedded)
		if err != nil {
			return nil, err
		}
		var vec []float32
		if p.Embedded != nil {
			vec = p.Embedded.Vector
		}
		out[i] = renderPassage(rec, vec)
	}
	return schema.Encode(out)
}

// DeletePassage deletes a passage of an archive.
func (s *Archives) DeletePassage(ctx context.Context, archiveID, passageID string) error {
	if err := letta.CheckID("archive_id", "archive", archiveID); err != nil {
		return err
	}
	if err := letta.CheckID("passage_id", "passage", passageID); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.ArchiveActor(archiveID), opDeleteArchivePassage, passageID, nil)
}

func deleteArchivePassageOp(call *actor.Call) ([]byte, error) {
	id, err := decodePayload[string](call)
	if err != nil {
		return nil, err
	}
	if _, err := schema.GetArchive(call.Txn, call.ID.Key); err != nil {
		return nil, err
	}
	return nil, memory.DeletePassage(call.Txn, call.ID.Key, id)
}

// AttachArchive attaches an archive to an agent: its passages join the
// agent's archival search. Attaching it again changes nothing.
func (s *Agents) AttachArchive(ctx context.Context, agentID, archiveID string) error {
	return s.archiveLink(ctx, opAttachArchive, agentID, archiveID)
}

// DetachArchive detaches an archive from an agent; detaching one that is
// not attached changes nothing.
func (s *Agents) DetachArchive(ctx context.Context, agentID, archiveID string) error {
	return s.archiveLink(ctx, opDetachArchive, agentID, archiveID)
}

func (s *Agents) archiveLink(ctx context.Context, op, agentID, archiveID string) error {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return err
	}
	if err := letta.CheckID("archive_id", "archive", archiveID); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.AgentActor(agentID), op, archiveID, nil)
}

func attachArchive(_ *core, call *actor.Call, a *schema.Agent, archiveID string) ([]byte, error) {
	if _, err := schema.GetArchive(call.Txn, archiveID); err != nil {
		return nil, err
	}
	return nil, schema.LinkArchive(call.Txn, a.ID, archiveID)
}

func detachArchive(_ *core, call *actor.Call, a *schema.Agent, archiveID string) ([]byte, error) {
	if _, err := schema.GetArchive(call.Txn, archiveID); err != nil {
		return nil, err
	}
	return nil, schema.UnlinkArchive(call.Txn, a.ID, archiveID)
}
