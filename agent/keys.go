package agent

import (
	"fmt"
	"strings"
	"time"

	"github.com/kelpie/kelpie/actor"
)

// Storage layout. Agents are actors (namespace "agents"): their records are
// the runtime's actor state. Blocks are shared between agents, so they are
// plain keys, written by whichever invocation edits them under the
// transaction's conflict detection; standalone block operations run on a
// per-block actor ("blocks") so that they are serialised like agent ones.
//
//	block/<block-id>                       Block JSON
//	agent-block/<agent-id>/<block-id>      attachment (JSON attachment)
//	block-agent/<block-id>/<agent-id>      reverse attachment (empty)
//	index/agents/<created, 16 hex>/<id>    every live agent, by creation time
//	index/blocks/<created, 16 hex>/<id>    every live block, by creation time
//
// Every key that names an agent is written in the same transaction as the
// agent, so the indexes cannot disagree with the records.
const (
	agentNamespace = "agents"
	blockNamespace = "blocks"
)

func blockKey(blockID string) []byte { return []byte("block/" + blockID) }

func attachmentPrefix(agentID string) []byte { return []byte("agent-block/" + agentID + "/") }
func attachmentKey(agentID, blockID string) []byte {
	return []byte("agent-block/" + agentID + "/" + blockID)
}

func blockAgentsPrefix(blockID string) []byte { return []byte("block-agent/" + blockID + "/") }
func blockAgentKey(blockID, agentID string) []byte {
	return []byte("block-agent/" + blockID + "/" + agentID)
}

const (
	agentIndexPrefix = "index/agents/"
	blockIndexPrefix = "index/blocks/"
)

// indexKey orders by creation time, then id. Hex of the nanosecond Unix time
// keeps byte order equal to time order for every date after 1970.
func indexKey(prefix string, created time.Time, id string) []byte {
	return fmt.Appendf(nil, "%s%016x/%s", prefix, uint64(created.UnixNano()), id)
}

// idFromIndexKey returns the id at the end of an index key.
func idFromIndexKey(key []byte) string {
	s := string(key)
	return s[strings.LastIndexByte(s, '/')+1:]
}

func agentActor(agentID string) actor.ID { return actor.ID{Namespace: agentNamespace, Key: agentID} }
func blockActor(blockID string) actor.ID { return actor.ID{Namespace: blockNamespace, Key: blockID} }
