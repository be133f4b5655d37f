package schema

import (
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// Archives (shared archival memory): a record each, indexed by creation
// time; their passages are Passages (and PassageVectors) owned by the
// archive id instead of an agent id; the agents an archive is attached to
// are links kept from both sides. An archive's record and passages are
// written by a per-archive actor that keeps no state (like tools); an
// agent's actor writes its links.
var (
	Archives = &Family{"archive", "archive/",
		"archive/<archive-id>", "an Archive record (JSON)"}
	ArchiveIndex = &Family{"archive-index", "index/archives/",
		"index/archives/<created, 16 hex>/<archive-id>", "empty: every archive, by creation time"}
	ArchiveAgents = &Family{"archive-agent", "archive-agent/",
		"archive-agent/<archive-id>/<agent-id>", "empty: the archive is attached to the agent"}
	AgentArchives = &Family{"agent-archive", "agent-archive/",
		"agent-archive/<agent-id>/<archive-id>", "empty: the reverse of archive-agent"}
)

// ArchiveNamespace is the actor namespace of archive operations.
const ArchiveNamespace = "archives"

// ArchiveActor is the actor that serialises operations on an archive.
func ArchiveActor(archiveID string) actor.ID {
	return actor.ID{Namespace: ArchiveNamespace, Key: archiveID}
}

// Archive is a stored archive.
type Archive struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description *string        `json:"description"`
	Embedding   string         `json:"embedding"` // the model handle of its passages
	Metadata    map[string]any `json:"metadata"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
}

// ArchiveNotFound is Letta's answer for a missing archive.
func ArchiveNotFound(id string) error {
	return letta.NotFoundf("Archive with id %s not found", letta.Clip(id))
}

// ArchiveKey is where an archive's record is.
func ArchiveKey(id string) []byte { return []byte(Archives.Prefix + id) }

// ArchiveAgentKey links an archive to an agent; AgentArchiveKey is its
// reverse.
func ArchiveAgentKey(archiveID, agentID string) []byte {
	return join(ArchiveAgents, archiveID, agentID)
}
func AgentArchiveKey(agentID, archiveID string) []byte {
	return join(AgentArchives, agentID, archiveID)
}
func ArchiveAgentsOf(archiveID string) []byte { return join(ArchiveAgents, archiveID, "") }
func AgentArchivesOf(agentID string) []byte   { return join(AgentArchives, agentID, "") }

// GetArchive reads an archive's record.
func GetArchive(txn kv.Txn, id string) (*Archive, error) {
	return get[Archive](txn, ArchiveKey(id), "archive "+id, ArchiveNotFound(id))
}

// PutArchive writes an archive's record, and its index entry when created.
func PutArchive(txn kv.Txn, a *Archive, created bool) error {
	if err := put(txn, ArchiveKey(a.ID), a); err != nil {
		return err
	}
	if created {
		return txn.Set(IndexKey(ArchiveIndex.Prefix, a.CreatedAt, a.ID), nil)
	}
	return nil
}

// DeleteArchive deletes an archive: its passages with their vectors and
// id entries, its links from both sides, its index entry and its record.
func DeleteArchive(txn kv.Txn, a *Archive) error {
	err := deleteEach(txn, ArchiveAgentsOf(a.ID), func(p kv.KeyValue) error { return txn.Delete(AgentArchiveKey(LastPart(p.Key), a.ID)) })
	if err != nil {
		return err
	}
	if err := DeletePassagesOf(txn, a.ID); err != nil {
		return err
	}
	if err := txn.Delete(IndexKey(ArchiveIndex.Prefix, a.CreatedAt, a.ID)); err != nil {
		return err
	}
	return txn.Delete(ArchiveKey(a.ID))
}

// LinkArchive attaches an archive to an agent (both sides); UnlinkArchive
// undoes it. Both are idempotent.
func LinkArchive(txn kv.Txn, agentID, archiveID string) error {
	if err := txn.Set(AgentArchiveKey(agentID, archiveID), nil); err != nil {
		return err
	}
	return txn.Set(ArchiveAgentKey(archiveID, agentID), nil)
}

func UnlinkArchive(txn kv.Txn, agentID, archiveID string) error {
	if err := txn.Delete(AgentArchiveKey(agentID, archiveID)); err != nil {
		return err
	}
	return txn.Delete(ArchiveAgentKey(archiveID, agentID))
}

// AgentArchiveIDs returns the ids of the archives attached to an agent.
func AgentArchiveIDs(txn kv.Txn, agentID string) ([]string, error) {
	return linkedIDs(txn, AgentArchivesOf(agentID))
}

// ArchiveAgentIDs returns the ids of the agents an archive is attached to.
func ArchiveAgentIDs(txn kv.Txn, archiveID string) ([]string, error) {
	return linkedIDs(txn, ArchiveAgentsOf(archiveID))
}

func linkedIDs(txn kv.Txn, prefix []byte) ([]string, error) {
	links, err := txn.Scan(kv.PrefixRange(prefix), 0, false)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = LastPart(l.Key)
	}
	return out, nil
}
