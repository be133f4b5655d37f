package schema

import (
	"strings"

	"github.com/kelpie/kelpie/actor"
)

// Family is one kind of key. Every key that starts with Prefix belongs to
// it, and no other key does.
type Family struct {
	Name   string // short and unique, used in reports
	Prefix string
	Layout string // the whole key, with the variable parts in <>
	Value  string // what the value holds
}

// The families. Agents are actors (namespace "agents"): an agent's record is
// its actor state. Blocks are shared between agents, so they are plain keys
// written by whichever invocation edits them; standalone block operations
// run on a per-block actor ("blocks") that keeps no state. Everything an
// agent owns (messages, runs, conversations, passages) is written by the
// agent's actor, so a turn step's messages, memory edits and run record
// commit together.
var (
	ActorStates = &Family{"actor-state", actor.StatePrefix,
		"actor/state/<namespace>/<key>", "the actor's state: for agents, an Agent record (JSON)"}
	ActorEpochs = &Family{"actor-epoch", actor.EpochPrefix,
		"actor/epoch/<namespace>/<key>", "the fencing epoch of the actor's latest activation"}
	ActorIdempotency = &Family{"actor-idem", actor.IdemPrefix,
		"actor/idem/<sha256 of the key, hex>", "the answer given to an Idempotency-Key, and when (JSON)"}
	ActorIdempotencyExpiry = &Family{"actor-idem-expiry", actor.IdemExpiryPrefix,
		"actor/idemexp/<written, Unix ns, 16 hex>/<sha256 of the key, hex>", "empty: the record's expiry entry, in time order"}

	Blocks = &Family{"block", "block/",
		"block/<block-id>", "a Block record (JSON)"}
	Attachments = &Family{"attachment", "agent-block/",
		"agent-block/<agent-id>/<block-id>", "the block's position among the agent's, decimal"}
	BlockAgents = &Family{"block-agent", "block-agent/",
		"block-agent/<block-id>/<agent-id>", "empty: the reverse of an attachment"}
	AgentIndex = &Family{"agent-index", "index/agents/",
		"index/agents/<created, 16 hex>/<agent-id>", "empty: every live agent, by creation time"}
	BlockIndex = &Family{"block-index", "index/blocks/",
		"index/blocks/<created, 16 hex>/<block-id>", "empty: every live block, by creation time"}
	AgentTerms = &Family{"agent-term", "index/agent-term/",
		"index/agent-term/<tag|name|project|gram>/<sha256 of the value, first 32 hex>/<created, 16 hex>/<agent-id>",
		"empty: the listed (not hidden) agents with the term, by creation time"}
	TagNames = &Family{"tag-name", "index/tag-name/",
		"index/tag-name/<tag, hex>/<agent-id>",
		"empty: the listed (not hidden) agents with the tag, by tag (hex keeps the tags' order)"}
	Counts = &Family{"count", "count/",
		"count/<agents|blocks>/base or count/<agents|blocks>/delta/<agent-id or block-id>",
		"the count of listed agents or of blocks (base), or an object's change not yet folded into it (delta: -1 or 1), decimal"}
	Meta = &Family{"meta", "meta/",
		VersionKey, "the layout version (Version), decimal; absent before version 2"}

	Messages = &Family{"message", "msg/",
		"msg/<agent-id>/<seq, 16 hex>", "a Message record (JSON); seq counts from 1 per agent, densely"}
	MessageIDs = &Family{"message-id", "msgid/",
		"msgid/<message-id>", `"<agent-id>/<seq, 16 hex>": where the message is`}
	ConversationMessages = &Family{"conversation-message", "cmsg/",
		"cmsg/<conversation-id>/<seq, 16 hex>", "empty: the agent's message seq belongs to the conversation"}
	TurnKeys = &Family{"turn-key", "turnkey/",
		"turnkey/<agent-id>/<sha256 of the otid or Idempotency-Key, hex>", "the id of the run that answered it"}
	ActiveRuns = &Family{"active-run", "active-run/",
		"active-run/<agent-id>", "the id of the agent's turn in progress"}
	Runs = &Family{"run", "run/",
		"run/<run-id>", "a Run record (JSON)"}
	AgentRuns = &Family{"agent-run", "agent-run/",
		"agent-run/<agent-id>/<run-id>", "empty: the agent's runs"}
	RunIndex = &Family{"run-index", "index/runs/",
		"index/runs/<created, 16 hex>/<run-id>", "empty: every run, by creation time"}
	Conversations = &Family{"conversation", "conv/",
		"conv/<conversation-id>", "a Conversation record (JSON)"}
	AgentConversations = &Family{"agent-conversation", "agent-conv/",
		"agent-conv/<agent-id>/<created, 16 hex>/<conversation-id>", "empty: the agent's conversations, by creation time"}
	ContextMessages = &Family{"context-message", "ctxmsg/",
		"ctxmsg/<agent-id or conversation-id>/<seq, 16 hex>",
		"the message's id: the agent's message seq is in the context of the agent's default conversation or of the conversation (see Context)"}
	Passages = &Family{"passage", "passage/",
		"passage/<agent-id or archive-id>/<seq, 16 hex>/<passage-id>", "a Passage record (JSON); seq is the insertion order, from 1 per agent or archive"}
	PassageIDs = &Family{"passage-id", "passageid/",
		"passageid/<passage-id>", "the key of the passage"}

	// Custom tools are shared between agents, like blocks: their records
	// are plain keys written by a per-tool actor ("tools"), and an agent's
	// actor writes its attachments.
	Tools = &Family{"tool", "tool/",
		"tool/<tool-id>", "a Tool record (JSON): a custom tool"}
	ToolNames = &Family{"tool-name", "toolname/",
		"toolname/<name>", "the id of the tool with that name: names are unique"}
	ToolIndex = &Family{"tool-index", "index/tools/",
		"index/tools/<created, 16 hex>/<tool-id>", "empty: every custom tool, by creation time"}
	AgentTools = &Family{"agent-tool", "agent-tool/",
		"agent-tool/<agent-id>/<tool-id>", "empty: the custom tool is attached to the agent"}
	ToolAgents = &Family{"tool-agent", "tool-agent/",
		"tool-agent/<tool-id>/<agent-id>", "empty: the reverse of an agent-tool attachment"}
)

// Families lists every family.
var Families = []*Family{
	ActorStates, ActorEpochs, ActorIdempotency, ActorIdempotencyExpiry,
	Blocks, Attachments, BlockAgents, AgentIndex, BlockIndex, AgentTerms, TagNames, Counts, TermCounts, CreateCounts, Meta,
	Messages, MessageIDs, ConversationMessages, TurnKeys, ActiveRuns,
	Runs, AgentRuns, RunIndex, Steps, RunSteps, Conversations, AgentConversations, ContextMessages,
	Passages, PassageIDs, PassageTerms, PassageCounts, PassageTagCounts, PassageVectors, PassageScanVectors, VectorCentroids, VectorPostings, VectorMembers, Archives, ArchiveIndex, ArchiveAgents, AgentArchives,
	Tools, ToolNames, ToolIndex, AgentTools, ToolAgents,
	Folders, FolderIndex, FolderNames, Files, FolderFiles, FileTexts, FileUploads, PendingFiles, FolderAgents, AgentFolders, FileAgents,
	MCPServers, MCPServerNames, MCPServerTools,
	Groups, GroupIndex, AgentGroups, Batches, BatchIndex,
	Identities, IdentityIndex, IdentityKeys, IdentityAgents, AgentIdentities, IdentityBlocks, BlockIdentities,
	GitObjects, GitRefs,
	ClusterNodes, ClusterClaims, ClusterClaimLog,
}

// VersionKey is where a store records its layout version.
const VersionKey = "meta/version"

// FamilyOf returns the family of key, or nil if the key belongs to none.
func FamilyOf(key []byte) *Family {
	k := string(key)
	for _, f := range Families {
		if strings.HasPrefix(k, f.Prefix) {
			return f
		}
	}
	return nil
}
