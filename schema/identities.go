package schema

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// Identities: a record each, indexed by creation time and by its
// (project, identifier_key), which is unique; the agents and blocks that
// belong to an identity are links kept from both sides, so that deleting
// either end finds its links. Identity operations run on a per-identity
// actor that keeps no state (like standalone block operations); an agent's
// links change in its own actor's transactions too.
var (
	Identities = &Family{"identity", "identity/",
		"identity/<identity-id>", "an Identity record (JSON)"}
	IdentityIndex = &Family{"identity-index", "index/identities/",
		"index/identities/<created, 16 hex>/<identity-id>", "empty: every identity, by creation time"}
	IdentityKeys = &Family{"identity-key", "identity-key/",
		"identity-key/<sha256 of project id, NUL, identifier key; hex>", "the id of the identity with that key"}
	IdentityAgents = &Family{"identity-agent", "identity-agent/",
		"identity-agent/<identity-id>/<agent-id>", "empty: the agent belongs to the identity"}
	AgentIdentities = &Family{"agent-identity", "agent-identity/",
		"agent-identity/<agent-id>/<identity-id>", "empty: the reverse of identity-agent"}
	IdentityBlocks = &Family{"identity-block", "identity-block/",
		"identity-block/<identity-id>/<block-id>", "empty: the block belongs to the identity"}
	BlockIdentities = &Family{"block-identity", "block-identity/",
		"block-identity/<block-id>/<identity-id>", "empty: the reverse of identity-block"}
)

// IdentityNamespace is the actor namespace of identity operations.
const IdentityNamespace = "identities"

// IdentityActor is the actor that serialises operations on an identity.
func IdentityActor(identityID string) actor.ID {
	return actor.ID{Namespace: IdentityNamespace, Key: identityID}
}

// Identity is a stored identity; its agents and blocks are its links.
type Identity struct {
	ID            string                   `json:"id"`
	IdentifierKey string                   `json:"identifier_key"`
	Name          string                   `json:"name"`
	IdentityType  string                   `json:"identity_type"`
	ProjectID     *string                  `json:"project_id"`
	Properties    []letta.IdentityProperty `json:"properties"`
	CreatedAt     time.Time                `json:"created_at"`
	UpdatedAt     time.Time                `json:"updated_at"`
}

// ErrIdentityNotFound is Letta's answer for a missing identity.
var ErrIdentityNotFound = &letta.Error{Kind: letta.KindNotFound, Message: "Identity not found"}

// IdentityKey is where an identity's record is.
func IdentityKey(id string) []byte { return []byte(Identities.Prefix + id) }

// IdentityKeyKey is the entry that makes (project, identifier key) unique.
func IdentityKeyKey(projectID *string, identifierKey string) []byte {
	project := ""
	if projectID != nil {
		project = *projectID
	}
	return fmt.Appendf(nil, "%s%x", IdentityKeys.Prefix, sha256.Sum256([]byte(project+"\x00"+identifierKey)))
}

// A link joins an identity to an agent or a block, stored from both sides.
type link struct{ forward, backward *Family }

var (
	identityAgents = link{IdentityAgents, AgentIdentities}
	identityBlocks = link{IdentityBlocks, BlockIdentities}
)

func (l link) set(txn kv.Txn, identityID, otherID string, linked bool) error {
	keys := [][]byte{join(l.forward, identityID, otherID), join(l.backward, otherID, identityID)}
	if linked {
		return setAll(txn, keys)
	}
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// ids lists the ids linked to owner on the side of f, in id order.
func ids(txn kv.Txn, f *Family, owner string) ([]string, error) {
	out := []string{}
	err := kv.ScanEach(txn, kv.PrefixRange(join(f, owner, "")), false, func(p kv.KeyValue) (bool, error) {
		out = append(out, LastPart(p.Key))
		return true, nil
	})
	return out, err
}

// SetIdentityBlock links a block to an identity, or unlinks it.
func SetIdentityBlock(txn kv.Txn, identityID, blockID string, linked bool) error {
	return identityBlocks.set(txn, identityID, blockID, linked)
}

// AgentsOf, BlocksOf and IdentitiesOfAgent list an identity's agents and
// blocks and an agent's identities.
func AgentsOf(txn kv.Txn, identityID string) ([]string, error) {
	return ids(txn, IdentityAgents, identityID)
}
func BlocksOf(txn kv.Txn, identityID string) ([]string, error) {
	return ids(txn, IdentityBlocks, identityID)
}
func IdentitiesOfAgent(txn kv.Txn, agentID string) ([]string, error) {
	return ids(txn, AgentIdentities, agentID)
}

// GetIdentity returns an identity, or ErrIdentityNotFound.
func GetIdentity(txn kv.Txn, id string) (*Identity, error) {
	return get[Identity](txn, IdentityKey(id), "identity "+id, ErrIdentityNotFound)
}

// FindIdentity returns the id of the identity with a (project, identifier
// key), or "".
func FindIdentity(txn kv.Txn, projectID *string, identifierKey string) (string, error) {
	v, err := txn.Get(IdentityKeyKey(projectID, identifierKey))
	if errors.Is(err, kv.ErrNotFound) {
		return "", nil
	}
	return string(v), err
}

// PutIdentity writes an identity with its index entry and key entry; was is
// its previous record (nil for a new one), whose key entry it replaces.
func PutIdentity(txn kv.Txn, was, is *Identity) error {
	if was != nil && string(IdentityKeyKey(was.ProjectID, was.IdentifierKey)) != string(IdentityKeyKey(is.ProjectID, is.IdentifierKey)) {
		if err := txn.Delete(IdentityKeyKey(was.ProjectID, was.IdentifierKey)); err != nil {
			return err
		}
	}
	if err := txn.Set(IdentityKeyKey(is.ProjectID, is.IdentifierKey), []byte(is.ID)); err != nil {
		return err
	}
	if err := txn.Set(IndexKey(IdentityIndex.Prefix, is.CreatedAt, is.ID), nil); err != nil {
		return err
	}
	return put(txn, IdentityKey(is.ID), is)
}

// DeleteIdentity deletes an identity, its entries, its links and its count
// of agents.
func DeleteIdentity(txn kv.Txn, id *Identity) error {
	if err := deleteTermCount(txn, Term{TermIdentity, id.ID}); err != nil {
		return err
	}
	for _, l := range []link{identityAgents, identityBlocks} {
		err := deleteEach(txn, join(l.forward, id.ID, ""), func(p kv.KeyValue) error {
			return txn.Delete(join(l.backward, LastPart(p.Key), id.ID))
		})
		if err != nil {
			return err
		}
	}
	for _, k := range [][]byte{IdentityKeyKey(id.ProjectID, id.IdentifierKey), IndexKey(IdentityIndex.Prefix, id.CreatedAt, id.ID)} {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return txn.Delete(IdentityKey(id.ID))
}

// unlinkAll removes every link of a block (owner) to identities, as it is
// deleted.
func unlinkAll(txn kv.Txn, l link, owner string) error {
	return deleteEach(txn, join(l.backward, owner, ""), func(p kv.KeyValue) error {
		return txn.Delete(join(l.forward, LastPart(p.Key), owner))
	})
}
