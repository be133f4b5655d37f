package schema

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Entry is one stored pair as Check sees it: Value is the value inside the
// checksum, or nil with Damaged set when the checksum failed (kv.Unseal).
type Entry struct {
	Key, Value []byte
	Damaged    bool
}

// Problem is one broken rule: Object is the agent or block it concerns ("",
// if none), Message says what is wrong.
type Problem struct {
	Object, Message string
}

// Report is what Check found: the problems, and how many keys of each
// family (by name) it examined, so that a caller can tell a rule that held
// from one that had nothing to check.
type Report struct {
	Problems []Problem
	Keys     map[string]int
}

// Check checks a whole store at rest (entries in key order, as a scan
// returns them) against the rules in the package comment. A damaged value
// is skipped, with the rules that need it: damage is the checksum's to
// catch, not a broken rule.
func Check(entries []Entry) Report {
	c := newChecker()
	for _, e := range entries {
		c.add(e)
	}
	c.checkRecordIndexes()
	c.checkAgentIndexes()
	c.checkAttachments()
	c.checkBlockLimits()
	c.checkMessages()
	c.checkMessageIndexes()
	c.checkRuns()
	c.checkSteps()
	c.checkGroups()
	c.batches.check(c)
	c.checkTurnKeys()
	c.checkConversations()
	c.checkContexts()
	c.checkPassages()
	c.checkPassageVectors()
	c.vecIndex.check(c)
	c.passageIx.check(c)
	c.checkArchives()
	c.folders.check(c)
	c.checkTools()
	c.checkMCPServers()
	c.checkIdentities()
	c.checkOrphans()
	c.repos.check(c)
	c.idem.check(c)
	c.cluster.check(c)
	return Report{Problems: c.problems, Keys: c.keys}
}

// checker holds what Check read, decoded. A nil record is a damaged one.
type checker struct {
	keys     map[string]int
	problems []Problem

	agents       map[string]*Agent
	blocks       map[string]*Block
	agentIndex   map[string]string // agent id -> index key
	blockIndex   map[string]string
	attachments  map[[2]string]bool // (agent, block)
	blockAgents  map[[2]string]bool // (agent, block), from the block's side
	messages     map[string]map[uint64]*Message
	messageIDs   map[string]string // message id -> location ("" when damaged)
	convMessages map[string][]uint64
	ctxEntries   map[string]map[uint64]string // context owner -> seq -> message id
	turnKeys     map[string][]string          // agent -> run ids its answered keys name
	active       map[string]string            // agent -> run id ("" when damaged)
	runs         map[string]*Run
	runIndex     map[string]string   // run id -> index key
	agentRuns    map[string][]string // agent -> run ids
	convs        map[string]*Conversation
	agentConvs   map[string][]string // agent -> index keys
	passages     map[string]*Passage // passage key -> passage
	passageIDs   map[string]string   // passage id -> passage key ("" when damaged)
	vectors      map[string]int      // passage vector key -> its length in bytes (-1 when damaged)
	scanVectors  map[string]int      // passage scan-vector key -> its length in bytes (-1 when damaged)
	scanModels   map[string]uint32   // passage scan-vector key -> its model hash
	agentIx      agentIndexes
	tools        toolKeys
	mcp          mcpKeys
	identities   identityEntries
	archives     archiveEntries
	folders      folderEntries
	batches      batchKeys
	vecIndex     vectorIndexEntries
	passageIx    passageIndexEntries
	idem         idemRecords
	repos        repoEntries
	steps        stepKeys
	groups       groupKeys
	cluster      clusterEntries
}

func newChecker() *checker {
	return &checker{
		keys: map[string]int{}, agents: map[string]*Agent{}, blocks: map[string]*Block{},
		agentIndex: map[string]string{}, blockIndex: map[string]string{},
		attachments: map[[2]string]bool{}, blockAgents: map[[2]string]bool{},
		messages: map[string]map[uint64]*Message{}, messageIDs: map[string]string{},
		convMessages: map[string][]uint64{}, ctxEntries: map[string]map[uint64]string{}, turnKeys: map[string][]string{}, active: map[string]string{},
		runs: map[string]*Run{}, runIndex: map[string]string{}, agentRuns: map[string][]string{},
		convs: map[string]*Conversation{}, agentConvs: map[string][]string{},
		passages: map[string]*Passage{}, passageIDs: map[string]string{}, vectors: map[string]int{}, scanVectors: map[string]int{}, scanModels: map[string]uint32{},
		tools:      newToolKeys(),
		repos:      repoEntries{objects: map[string]bool{}, refs: map[string]string{}},
		mcp:        newMCPKeys(),
		steps:      stepKeys{records: map[string]*Step{}, entries: map[string]string{}},
		groups:     groupKeys{records: map[string]*Group{}, index: map[string]string{}, members: map[[2]string]bool{}},
		folders:    newFolderEntries(),
		vecIndex:   newVectorIndexEntries(),
		passageIx:  newPassageIndexEntries(),
		archives:   archiveEntries{records: map[string]*Archive{}, index: map[string]string{}, links: map[[2]string]int{}},
		identities: identityEntries{records: map[string]*Identity{}, index: map[string]string{}, keys: map[string]string{}, links: map[*Family]map[[2]string]bool{}},
		agentIx:    agentIndexes{terms: map[string]bool{}, termCounts: map[string]bool{}, bases: map[string]int{}, deltas: map[string]map[string]int{}, damaged: map[string]bool{}, unknown: map[[2]string]bool{}},
	}
}

func (c *checker) report(object, format string, args ...any) {
	c.problems = append(c.problems, Problem{object, fmt.Sprintf(format, args...)})
}

// parts splits the variable part of a key of f at its slashes.
func parts(f *Family, key string) []string { return strings.Split(key[len(f.Prefix):], "/") }

// decodeInto decodes e's value into a new R, reporting a value that does
// not decode; it returns nil for a damaged or undecodable value.
func decodeInto[R any](c *checker, e Entry, what string) *R {
	if e.Damaged {
		return nil
	}
	r, err := decode[R](e.Value, what)
	if err != nil {
		c.report("", "%q: %v", e.Key, err)
		return nil
	}
	return r
}

func (c *checker) add(e Entry) {
	f := FamilyOf(e.Key)
	if f == nil {
		c.report("", "key %q belongs to no family of the schema", e.Key)
		return
	}
	c.keys[f.Name]++
	k := string(e.Key)
	p := parts(f, k)
	switch f {
	case ActorStates:
		if strings.HasPrefix(k, string(AgentKey(""))) {
			c.agents[p[1]] = decodeInto[Agent](c, e, "agent record")
		}
	case Blocks:
		c.blocks[p[0]] = decodeInto[Block](c, e, "block")
	case AgentIndex:
		c.indexEntry(c.agentIndex, "agent", p[1], k)
	case BlockIndex:
		c.indexEntry(c.blockIndex, "block", p[1], k)
	case Attachments:
		c.attachments[[2]string{p[0], p[1]}] = true
	case BlockAgents:
		c.blockAgents[[2]string{p[1], p[0]}] = true
	case AgentTerms, TagNames, Counts, TermCounts, CreateCounts, Meta:
		c.addAgentIndexes(f, e, p)
	case Tools, ToolNames, ToolIndex, AgentTools, ToolAgents:
		c.addTool(f, e, p)
	case MCPServers, MCPServerNames, MCPServerTools:
		c.addMCP(f, e, p)
	case Identities, IdentityIndex, IdentityKeys, IdentityAgents, AgentIdentities, IdentityBlocks, BlockIdentities:
		c.addIdentity(f, e, p)
	case VectorCentroids, VectorPostings, VectorMembers:
		c.vecIndex.add(c, f, e, p)
	case PassageTerms, PassageCounts, PassageTagCounts:
		c.passageIx.add(c, f, e, p)
	case Archives, ArchiveIndex, ArchiveAgents, AgentArchives:
		c.addArchive(f, e, p)
	case Folders, FolderIndex, FolderNames, Files, FolderFiles, FileTexts, FileUploads, PendingFiles, FolderAgents, AgentFolders, FileAgents:
		c.folders.add(c, f, e, p)
	case ActorIdempotency, ActorIdempotencyExpiry:
		c.idem.add(c, f, e)
	case GitObjects, GitRefs:
		c.repos.add(c, f, e, p)
	case Steps, RunSteps:
		c.addStep(f, e, p)
	case Groups, GroupIndex, AgentGroups:
		c.addGroup(f, e, p)
	case Batches, BatchIndex:
		c.batches.add(c, f, e, p)
	case ClusterNodes, ClusterClaims, ClusterClaimLog:
		c.cluster.add(c, f, e)
	default:
		c.addOwned(f, e, p)
	}
}

// addOwned takes the keys of the families an agent owns.
func (c *checker) addOwned(f *Family, e Entry, p []string) {
	k := string(e.Key)
	switch f {
	case Messages:
		c.addMessage(e, p[0])
	case MessageIDs:
		c.messageIDs[p[0]] = ""
		if !e.Damaged {
			c.messageIDs[p[0]] = string(e.Value)
		}
	case ConversationMessages:
		if seq, err := SeqOf(e.Key); err == nil {
			c.convMessages[p[0]] = append(c.convMessages[p[0]], seq)
		} else {
			c.report("", "%v", err)
		}
	case ContextMessages:
		c.addContextEntry(e, p[0])
	case TurnKeys:
		if !e.Damaged {
			c.turnKeys[p[0]] = append(c.turnKeys[p[0]], string(e.Value))
		}
	case ActiveRuns:
		c.active[p[0]] = string(e.Value) // "" when damaged: which run is unknown
	case Runs:
		c.runs[p[0]] = decodeInto[Run](c, e, "run")
	case RunIndex:
		c.indexEntry(c.runIndex, "run", p[1], k)
	case AgentRuns:
		c.agentRuns[p[0]] = append(c.agentRuns[p[0]], p[1])
	case Conversations:
		c.convs[p[0]] = decodeInto[Conversation](c, e, "conversation")
	case AgentConversations:
		c.agentConvs[p[0]] = append(c.agentConvs[p[0]], k)
	case Passages:
		c.passages[k] = decodeInto[Passage](c, e, "passage")
	case PassageIDs:
		c.passageIDs[p[0]] = ""
		if !e.Damaged {
			c.passageIDs[p[0]] = string(e.Value)
		}
	case PassageVectors:
		c.vectors[k] = len(e.Value)
		if e.Damaged {
			c.vectors[k] = -1
		}
	case PassageScanVectors:
		c.scanVectors[k] = len(e.Value)
		c.scanModels[k], _ = SplitScanVector(e.Value)
		if e.Damaged {
			c.scanVectors[k] = -1
		}
	}
}

func (c *checker) indexEntry(index map[string]string, kind, id, key string) {
	if old, dup := index[id]; dup {
		c.report(id, "%s %s has two index entries: %q and %q", kind, id, old, key)
	}
	index[id] = key
}

func (c *checker) addMessage(e Entry, agentID string) {
	seq, err := SeqOf(e.Key)
	if err != nil {
		c.report(agentID, "%v", err)
		return
	}
	if c.messages[agentID] == nil {
		c.messages[agentID] = map[uint64]*Message{}
	}
	c.messages[agentID][seq] = decodeInto[Message](c, e, "message")
}

// checkRecordIndexes: each agent and block record has its one index entry,
// at the key its creation time gives, and each entry names a record.
func (c *checker) checkRecordIndexes() {
	for _, id := range slices.Sorted(maps.Keys(c.agents)) {
		var created time.Time
		if a := c.agents[id]; a != nil {
			created = a.CreatedAt
		}
		c.checkIndexed("agent", id, c.agents[id] != nil, created, AgentIndex, c.agentIndex)
	}
	for _, id := range slices.Sorted(maps.Keys(c.blocks)) {
		var created time.Time
		if b := c.blocks[id]; b != nil {
			created = b.CreatedAt
		}
		c.checkIndexed("block", id, c.blocks[id] != nil, created, BlockIndex, c.blockIndex)
	}
	for _, id := range slices.Sorted(maps.Keys(c.agentIndex)) {
		if _, ok := c.agents[id]; !ok {
			c.report(id, "index entry %q names agent %s, which has no record", c.agentIndex[id], id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.blockIndex)) {
		if _, ok := c.blocks[id]; !ok {
			c.report(id, "index entry %q names block %s, which has no record", c.blockIndex[id], id)
		}
	}
}

// checkIndexed checks that a record has its index entry; known says whether
// its creation time could be read.
func (c *checker) checkIndexed(kind, id string, known bool, created time.Time, f *Family, index map[string]string) {
	k, ok := index[id]
	switch want := string(IndexKey(f.Prefix, created, id)); {
	case !ok:
		c.report(id, "%s %s has a record but no index entry", kind, id)
	case known && k != want:
		c.report(id, "%s %s: index entry %q does not match its record (want %q)", kind, id, k, want)
	}
}

// checkAttachments: attachments are symmetric and join records that exist.
func (c *checker) checkAttachments() {
	pairs := make([][2]string, 0, len(c.attachments)+len(c.blockAgents))
	for p := range c.attachments {
		pairs = append(pairs, p)
	}
	for p := range c.blockAgents {
		if !c.attachments[p] {
			pairs = append(pairs, p)
		}
	}
	slices.SortFunc(pairs, func(x, y [2]string) int { return strings.Compare(x[0]+x[1], y[0]+y[1]) })
	for _, p := range pairs {
		a, b := p[0], p[1]
		switch {
		case !c.attachments[p]:
			c.report(a, "block %s lists agent %s, which does not have it attached", b, a)
		case !c.blockAgents[p]:
			c.report(a, "agent %s has block %s attached, which does not list it", a, b)
		}
		if _, ok := c.agents[a]; !ok {
			c.report(a, "block %s is attached to agent %s, which has no record", b, a)
		}
		if _, ok := c.blocks[b]; !ok {
			c.report(a, "agent %s has block %s attached, which has no record", a, b)
		}
	}
}

// checkBlockLimits: no block holds more characters than its limit.
func (c *checker) checkBlockLimits() {
	for _, id := range slices.Sorted(maps.Keys(c.blocks)) {
		b := c.blocks[id]
		if b == nil {
			continue
		}
		if n := utf8.RuneCountInString(b.Value); n > b.Limit {
			c.report(id, "block %s (label %q) holds %d characters, over its limit of %d", id, b.Label, n, b.Limit)
		}
	}
}

func (c *checker) agentExists(id string) bool { _, ok := c.agents[id]; return ok }
