package schema_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/cluster"
	"github.com/kelpie/kelpie/embedding"
	"github.com/kelpie/kelpie/internal/mcptest"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
	"github.com/kelpie/kelpie/mcpclient"
	"github.com/kelpie/kelpie/schema"
)

// Spec: every key belongs to at most one family.
func TestFamiliesDisjoint(t *testing.T) {
	for _, f := range schema.Families {
		for _, g := range schema.Families {
			if f != g && strings.HasPrefix(f.Prefix, g.Prefix) {
				t.Errorf("prefix %q of %s begins with %q of %s", f.Prefix, f.Name, g.Prefix, g.Name)
			}
		}
		if got := schema.FamilyOf([]byte(f.Prefix + "x")); got != f {
			t.Errorf("FamilyOf(%q) = %v, want %s", f.Prefix+"x", got, f.Name)
		}
	}
}

// model calls archival_memory_insert, then answers in text; asked about
// "wait", it says it is waiting and waits until its context ends.
type model struct {
	calls   int
	waiting chan struct{}
}

func (p *model) Name() string { return "openai" }

func (p *model) Complete(ctx context.Context, req llm.Request, _ func(llm.Delta)) (*llm.Response, error) {
	if last := req.Messages[len(req.Messages)-1]; last.Content == "wait" {
		close(p.waiting)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if len(req.Tools) == 0 { // the summariser
		return &llm.Response{Content: "a summary", StopReason: llm.StopEndTurn}, nil
	}
	p.calls++
	if p.calls%2 == 1 {
		args := `{"content":"the sky is blue"}`
		return &llm.Response{ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "archival_memory_insert", Arguments: args}}, StopReason: llm.StopToolCalls}, nil
	}
	return &llm.Response{Content: "noted", StopReason: llm.StopEndTurn}, nil
}

type resolver struct{ p llm.Provider }

func (r resolver) Resolve(handle string) (llm.Provider, string, error) { return r.p, handle, nil }

// populated returns the stored entries of a store in which the service
// wrote every family: agents with blocks, a standalone block, messages in
// the default conversation and in another, a tool call with its result,
// a custom tool attached to an agent,
// passages, a memory repository, an idempotent create, and a turn in progress.
func populated(t *testing.T) []schema.Entry {
	t.Helper()
	eng := kv.NewMemEngine()
	store := kv.NewDB(eng)
	ctx := context.Background()
	_, err := schema.Upgrade(ctx, store)
	must(t, err)
	m := &model{waiting: make(chan struct{})}
	// As a node of a cluster, so that the agents' claims are written too.
	node, err := cluster.Join(ctx, cluster.Config{Store: store, NodeID: "n1", Addr: "n1:8283", Secret: []byte("a secret of 16 bytes or more")})
	must(t, err)
	defer node.Leave(context.Background())
	svc, err := agent.New(agent.Config{Store: store, DefaultModel: "openai/gpt-4o-mini", LLM: resolver{m}, Runtime: actor.Config{Placement: node},
		MCP: mcpclient.New(mcpclient.Config{AllowPrivate: true}), Embedder: holdingEmbedder{}})
	must(t, err)
	defer svc.Close(context.Background())
	// An agent deleted takes its cluster claim with it.
	gone, err := svc.Agents.Create(ctx, letta.CreateAgentRequest{})
	must(t, err)
	must(t, svc.Agents.Delete(ctx, gone.ID))
	txn, err := store.Begin(ctx)
	must(t, err)
	left, err := txn.Scan(kv.PrefixRange([]byte("cluster/claim")), 0, false)
	txn.Discard()
	must(t, err)
	for _, e := range left {
		if strings.Contains(string(e.Key), gone.ID) {
			t.Errorf("the deleted agent's claim is left: %s", e.Key)
		}
	}
	label, value, project := "human", "Ada", "project-1"
	a, err := svc.Agents.Create(agent.WithIdempotencyKey(ctx, "k1"), letta.CreateAgentRequest{
		MemoryBlocks: []letta.CreateBlock{{Label: &label, Value: &value}}, Tags: []string{"red", "blue", "git-memory-enabled"}, ProjectID: &project})
	must(t, err)
	blockLabel := "notes"
	b, err := svc.Blocks.Create(ctx, letta.CreateBlock{Label: &blockLabel})
	must(t, err)
	_, err = svc.Agents.AttachBlock(ctx, a.ID, b.ID)
	must(t, err)
	src := "def f():\n    return 1\n"
	tl, err := svc.Tools.Upsert(ctx, letta.ToolCreate{SourceCode: &src, JSONSchema: map[string]any{"name": "f", "parameters": map[string]any{"type": "object"}}})
	must(t, err)
	_, err = svc.Agents.AttachTool(ctx, a.ID, tl.ID)
	must(t, err)
	mcpURL, mcpType, mcpName := mcptest.StartHTTP(t, nil).URL+"/mcp", "streamable_http", "remote"
	srv, err := svc.MCPServers.Create(ctx, letta.MCPServerRequest{ServerName: &mcpName, Config: &letta.MCPServerConfig{Type: &mcpType, ServerURL: &mcpURL}})
	must(t, err)
	mcpTools, err := svc.MCPServers.Tools(ctx, srv.ID)
	must(t, err)
	_, err = svc.Agents.AttachTool(ctx, a.ID, mcpTools[0].ID)
	must(t, err)
	key, name, typ := "user-1", "Ada", "user"
	_, err = svc.Identities.Create(ctx, letta.IdentityRequest{IdentifierKey: &key, Name: &name, IdentityType: &typ,
		AgentIDs: &[]string{a.ID}, BlockIDs: &[]string{b.ID}})
	must(t, err)
	_, err = svc.Groups.Create(ctx, letta.GroupCreate{AgentIDs: []string{a.ID}, Description: new("a group")})
	must(t, err)
	c, err := svc.Conversations.Create(ctx, a.ID, letta.CreateConversationRequest{})
	must(t, err)
	send := func(conv, otid, text string) {
		turn, err := svc.Messages.Send(ctx, a.ID, conv, letta.MessageRequest{Messages: []letta.MessageCreate{{Role: "user", Content: json.RawMessage(`"` + text + `"`), Otid: &otid}}})
		must(t, err)
		if text != "wait" {
			_, err = turn.Response(ctx)
			must(t, err)
		}
	}
	send("", "o1", "hi")
	send(c.ID, "o2", "hi")
	all := "all"
	_, err = svc.Agents.Summarize(ctx, a.ID, c.ID, agent.CompactionSettings{Mode: &all}, false)
	must(t, err)
	send(c.ID, "o4", "hi")
	_, err = svc.Conversations.Fork(ctx, a.ID, c.ID)
	must(t, err)
	_, err = svc.Archival.Create(ctx, a.ID, letta.CreatePassageRequest{Text: "a passage", Tags: []string{"notes", "later"}})
	must(t, err)
	archiveName := "shared"
	ar, err := svc.Archives.Create(ctx, letta.ArchiveCreateRequest{Name: &archiveName})
	must(t, err)
	text := "an archive's passage"
	_, err = svc.Archives.CreatePassages(ctx, ar.ID, []letta.ArchivePassageCreate{{Text: &text}})
	must(t, err)
	must(t, svc.Agents.AttachArchive(ctx, a.ID, ar.ID))
	populateFolders(t, svc, a.ID)
	populateBatch(t, svc, a.ID)
	putLegacyPassage(t, store, ar.ID, 2, "a legacy passage")
	send("", "o3", "wait")
	<-m.waiting

	snap, err := eng.NewSnapshot()
	must(t, err)
	defer snap.Close()
	kvs, err := snap.Scan(kv.Range{Start: []byte{0}}, 0, false)
	must(t, err)
	entries := make([]schema.Entry, len(kvs))
	for i, p := range kvs {
		v, err := kv.Unseal(p.Key, p.Value)
		must(t, err)
		entries[i] = schema.Entry{Key: p.Key, Value: v}
	}
	return entries
}

// putLegacyPassage stores an embedded passage as a store written before the
// vector index did: its quantized vector a scan vector.
func putLegacyPassage(t *testing.T, store kv.Store, archiveID string, seq uint64, text string) {
	t.Helper()
	ctx := context.Background()
	txn, err := store.Begin(ctx)
	must(t, err)
	p := &schema.Passage{ID: "passage-00000000-0000-4000-8000-00000000000" + strconv.FormatUint(seq, 10), ArchiveID: archiveID, Seq: seq, Text: text,
		Tags: []string{}, Embedding: "openai/text-embedding-ada-002", CreatedAt: time.Unix(1, 0).UTC(), UpdatedAt: time.Unix(1, 0).UTC()}
	must(t, schema.PutPassage(txn, p))
	v := llmtest.Embed(text, 8)
	must(t, schema.PutPassageVector(txn, p, v))
	scan := binary.LittleEndian.AppendUint32(nil, schema.EmbeddingModelHash(p.Embedding))
	must(t, txn.Set(schema.PassageScanVectorFor(schema.PassageKey(archiveID, seq, p.ID)), append(scan, embedding.Quantize(v)...)))
	must(t, txn.Commit(ctx))
}

// wordEmbedder embeds texts as the llmtest double does, in 8 dimensions.
type wordEmbedder struct{}

func (wordEmbedder) Embed(_ context.Context, _ string, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = llmtest.Embed(t, 8)
	}
	return out, nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Spec: what the service writes keeps every rule, and every family is
// written (so each rule has something to check).
func TestServiceWritesEveryFamily(t *testing.T) {
	rep := schema.Check(populated(t))
	for _, p := range rep.Problems {
		t.Errorf("problem: %s: %s", p.Object, p.Message)
	}
	for _, f := range schema.Families {
		if rep.Keys[f.Name] == 0 {
			t.Errorf("no key of family %s (%s)", f.Name, f.Prefix)
		}
	}
}

// breakage changes a healthy store.
type breakage func(es []schema.Entry) []schema.Entry

// drop removes the first entry whose key has prefix and contains all of
// parts.
func drop(prefix string, parts ...string) breakage {
	return func(es []schema.Entry) []schema.Entry {
		for i, e := range es {
			if matches(e, prefix, parts) {
				return append(es[:i:i], es[i+1:]...)
			}
		}
		panic("no entry under " + prefix)
	}
}

// dropTermCounts drops the count of every term of kind, base and deltas.
func dropTermCounts(kind string) breakage {
	return func(es []schema.Entry) []schema.Entry {
		var out []schema.Entry
		for _, e := range es {
			k := string(e.Key)
			if !strings.HasPrefix(k, schema.TermCounts.Prefix) || !strings.Contains(k, "/"+kind+"/") {
				out = append(out, e)
			}
		}
		if len(out) == len(es) {
			panic("no count of a term of kind " + kind)
		}
		return out
	}
}

// editCreateCounts rewrites the value of the first count key of a create.
func editCreateCounts(fn func(string) string) breakage {
	return func(es []schema.Entry) []schema.Entry {
		for i, e := range es {
			if schema.FamilyOf(e.Key) == schema.CreateCounts {
				es[i].Value = []byte(fn(string(e.Value)))
				return es
			}
		}
		panic("no count key of a create")
	}
}

// edit rewrites the first record under prefix whose value contains all of
// parts.
func edit(prefix string, fn func(map[string]any), parts ...string) breakage {
	return func(es []schema.Entry) []schema.Entry {
		for i, e := range es {
			if !strings.HasPrefix(string(e.Key), prefix) || !containsAll(e.Value, parts) {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal(e.Value, &rec); err != nil {
				panic(err)
			}
			fn(rec)
			es[i].Value, _ = json.Marshal(rec)
			return es
		}
		panic("no record under " + prefix)
	}
}

func matches(e schema.Entry, prefix string, parts []string) bool {
	return strings.HasPrefix(string(e.Key), prefix) && containsAll(e.Key, parts)
}

func containsAll(b []byte, parts []string) bool {
	for _, p := range parts {
		if !bytes.Contains(b, []byte(p)) {
			return false
		}
	}
	return true
}

// Spec: each rule of the package comment catches its breakage, and a
// damaged value is skipped, not reported.
func TestCheckFindsEachBrokenRule(t *testing.T) {
	cases := []struct {
		name   string
		break_ breakage
		want   string
	}{
		{"agent without index entry", drop(schema.AgentIndex.Prefix), "has a record but no index entry"},
		{"index entry without agent", drop(string(schema.AgentKey(""))), "which has no record"},
		{"one-sided attachment", drop(schema.BlockAgents.Prefix), "which does not list it"},
		{"block over its limit", edit(schema.Blocks.Prefix, func(r map[string]any) { r["limit"] = 1 }, `"label":"human"`), "over its limit of 1"},
		{"gap in the messages", drop(schema.Messages.Prefix, "0000000000000002"), "numbering has a gap"},
		{"tool call without its result", edit(schema.Messages.Prefix, func(r map[string]any) { r["tool_call_id"] = "call_other" }, `"role":"tool"`), "did not make"},
		{"message id index wrong", edit(schema.Messages.Prefix, func(r map[string]any) { r["id"] = "message-x" }, `"seq":1,`), "its id index says"},
		{"run never closed", edit(schema.Runs.Prefix, func(r map[string]any) { r["status"] = "running" }, `"status":"completed"`), "was never closed"},
		{"answered key without run", drop(schema.Runs.Prefix), "which has no record"},
		{"step entry without step", drop(schema.Steps.Prefix), "names step"},
		{"group without its index entry", drop(schema.GroupIndex.Prefix), "no index entry"},
		{"group member entry missing", drop(schema.AgentGroups.Prefix), "which has no entry for it"},
		{"group member entry without group", drop(schema.Groups.Prefix), "which has no record"},
		{"batch without its index entry", drop(schema.BatchIndex.Prefix), "batch job-"},
		{"batch index entry without batch", drop(schema.Batches.Prefix), "names batch"},
		{"batch of an unknown status", edit(schema.Batches.Prefix, func(r map[string]any) { r["status"] = "completed" }), "neither running nor cancelled"},
		{"batch item without its run", edit(schema.Batches.Prefix, func(r map[string]any) { r["items"] = []any{map[string]any{"agent_id": "agent-1"}} }), "exactly one of a run and an error"},
		{"batch item with a run and an error", edit(schema.Batches.Prefix, func(r map[string]any) {
			r["items"] = []any{map[string]any{"agent_id": "agent-1", "run_id": "run-1", "error": "busy"}}
		}), "exactly one of a run and an error"},
		{"step without entry", drop(schema.RunSteps.Prefix), "has no entry among the steps"},
		{"step outside its run", edit(schema.Steps.Prefix, func(r map[string]any) { r["run_id"] = "run-00000000-0000-4000-8000-000000000000" }), "which has no record"},
		{"conversation not indexed", drop(schema.AgentConversations.Prefix), "index entry"},
		{"conversation message index wrong", edit(schema.Messages.Prefix, func(r map[string]any) { delete(r, "conversation_id") }, `"conversation_id":"conv-`), "belongs to conversation"},
		{"passage not located", drop(schema.PassageIDs.Prefix), "its id index says"},
		{"passage without its vector", drop(schema.PassageVectors.Prefix), "but has no vector"},
		{"vector without its scan vector", drop(schema.PassageScanVectors.Prefix), "has neither a scan vector nor a posting"},
		{"scan vector of another model", edit(schema.Passages.Prefix, func(r map[string]any) { r["embedding"] = "other/model" }, "legacy"), "its scan vector another model"},
		{"vector without its posting", drop(schema.VectorPostings.Prefix), "has neither a scan vector nor a posting"},
		{"posting in another model's space", edit(schema.Passages.Prefix, func(r map[string]any) { r["embedding"] = "other/model" }, "a passage"), "but its posting is in space"},
		{"posting without its member entry", drop(schema.VectorMembers.Prefix), "has no member entry naming it"},
		{"vector list without its centroid", drop(schema.VectorCentroids.Prefix), "but has no centroid"},
		{"vector list miscounted", func(es []schema.Entry) []schema.Entry {
			for i, e := range es {
				if strings.HasPrefix(string(e.Key), schema.VectorCentroids.Prefix) {
					_, c := schema.DecodeCentroid(e.Value)
					es[i].Value = schema.EncodeCentroid(7, c)
					return es
				}
			}
			panic("no vector list")
		}, "counts 7 postings but holds"},
		{"posting of no passage", func(es []schema.Entry) []schema.Entry {
			return append(es, schema.Entry{Key: []byte(schema.VectorPostings.Prefix + "agent-x/00000000-8/00000000/0000000000000001/passage-x"), Value: make([]byte, 12)})
		}, "which is not stored"},
		{"scan vector left in an indexed space", func(es []schema.Entry) []schema.Entry {
			for _, e := range es {
				if strings.HasPrefix(string(e.Key), schema.VectorMembers.Prefix) && !strings.Contains(string(e.Key), "legacy") {
					owner := strings.Split(string(e.Key[len(schema.VectorMembers.Prefix):]), "/")[0]
					pk := []byte(string(schema.PassagesOf(owner)) + string(e.Key[len(schema.VectorMembersOf(owner)):]))
					space := strings.Split(string(e.Value), "/")[0]
					model, _ := strconv.ParseUint(space[:8], 16, 32)
					scan := binary.LittleEndian.AppendUint32(nil, uint32(model))
					return append(es, schema.Entry{Key: schema.PassageScanVectorFor(pk), Value: append(scan, make([]byte, 12)...)})
				}
			}
			panic("no vector member")
		}, "which has a vector index"},
		{"vector of no passage", func(es []schema.Entry) []schema.Entry {
			return append(es, schema.Entry{Key: schema.PassageVectorKey("agent-x", 1, "passage-x"), Value: make([]byte, 32)})
		}, "has no passage"},
		{"passage without its posting", drop(schema.PassageTerms.Prefix), "but no posting"},
		{"posting of a word the passage lacks", edit(schema.Passages.Prefix, func(r map[string]any) { r["text"] = "another text" }, `"text":"a passage"`), "is not one of the words of passage"},
		{"posting of no passage", func(es []schema.Entry) []schema.Entry {
			return append(es, schema.Entry{Key: schema.PassageTermKey("agent-x", "word", schema.PassageKey("agent-x", 1, "passage-x"))})
		}, "or the passage is not stored"},
		{"passage count missing", drop(schema.PassageCounts.Prefix), "the passage count of"},
		{"passage tag count missing", drop(schema.PassageTagCounts.Prefix), "tagged"},
		{"passage tag count of a tag removed", edit(schema.Passages.Prefix, func(r map[string]any) { r["tags"] = []string{"notes"} }, `"text":"a passage"`), `tagged "later" is 1`},
		{"folder without index entry", drop(schema.FolderIndex.Prefix), "has a record but no index entry"},
		{"folder without its name entry", drop(schema.FolderNames.Prefix), "is not its name's entry"},
		{"file of no folder", drop(schema.Folders.Prefix), "which has no record"},
		{"unfinished file without its pending entry", drop(schema.PendingFiles.Prefix), "pending entry says otherwise"},
		{"completed file missing a passage", drop(schema.Passages.Prefix + "source-"), "is completed with"},
		{"folder link kept from one side", drop(schema.AgentFolders.Prefix), "kept from one side only"},
		{"view of a file without a record", drop(schema.Files.Prefix), "which has no record"},
		{"file text of no file", func(es []schema.Entry) []schema.Entry {
			return append(es, schema.Entry{Key: schema.FileTextKey("file-gone"), Value: []byte("x")})
		}, "the file has no record"},
		{"archive without index entry", drop(schema.ArchiveIndex.Prefix), "has a record but no index entry"},
		{"archive link kept from one side", drop(schema.AgentArchives.Prefix), "kept from one side only"},
		{"archive passage of no archive", drop(schema.Archives.Prefix), "which has no record"},
		{"context names a message that is not its system message", edit(string(schema.AgentKey("")), func(r map[string]any) {
			r["context"].(map[string]any)["system_seq"] = 2
		}), "as its system message, but that is"},
		{"context names a summary that is not one", edit(schema.Conversations.Prefix, func(r map[string]any) {
			r["context"].(map[string]any)["summary_seq"] = 1
		}), "as its summary, but that is"},
		{"message missing from its context's index", drop(schema.ContextMessages.Prefix), "but not in its index"},
		{"context index lists its own system prompt", func(es []schema.Entry) []schema.Entry {
			for _, e := range es {
				if a, err := schema.DecodeAgent(e.Value); err == nil && strings.HasPrefix(string(e.Key), string(schema.AgentKey(""))) {
					return append(es, schema.Entry{Key: schema.ContextMessageKey(a.ID, a.Context.SystemSeq), Value: []byte(a.Context.SystemID)})
				}
			}
			panic("no agent")
		}, "a system message of context"},
		{"context index entry of no context", func(es []schema.Entry) []schema.Entry {
			return append(es, schema.Entry{Key: schema.ContextMessageKey("conv-gone", 1), Value: []byte("message-x")})
		}, "neither an agent nor a conversation"},
		{"context starts past the messages", edit(schema.Conversations.Prefix, func(r map[string]any) {
			r["context"].(map[string]any)["start"] = 1 << 40
		}), "starts at message"},
		{"agent without its term entry", drop(schema.AgentTerms.Prefix), "but no entry"},
		{"agent without its tag-name entry", drop(schema.TagNames.Prefix), "but no entry"},
		{"identity without its key entry", drop(schema.IdentityKeys.Prefix), "has no key entry"},
		{"identity without its index entry", drop(schema.IdentityIndex.Prefix), "has a record but no index entry"},
		{"identity link kept from one side", drop(schema.AgentIdentities.Prefix), "which does not list it"},
		{"identity link to a block without a record", drop(schema.Blocks.Prefix), "which has no record"},
		{"tag-name entry of no agent's tag", func(es []schema.Entry) []schema.Entry {
			return append(es, schema.Entry{Key: schema.TagNameKey("ghost", "agent-x")})
		}, "is not one of agent agent-x's terms"},
		{"term entry of no agent's term", func(es []schema.Entry) []schema.Entry {
			return append(es, schema.Entry{Key: []byte(schema.AgentTerms.Prefix + "tag/00/0000000000000000/agent-x")})
		}, "is not one of agent agent-x's terms"},
		{"term entry of a tag removed", edit(string(schema.AgentKey("")), func(r map[string]any) { r["tags"] = []string{"red"} }), "is not one of agent"},
		{"count off", edit(string(schema.AgentKey("")), func(r map[string]any) { r["hidden"] = true }), "agents are counted"},
		{"tag count missing", dropTermCounts(schema.TermTag), "the count of tag/"},
		{"name count missing", dropTermCounts(schema.TermName), "the count of name/"},
		{"project count missing", dropTermCounts(schema.TermProject), "the count of project/"},
		{"identity count missing", dropTermCounts(schema.TermIdentity), "the count of identity/"},
		{"tag count of a tag removed", edit(string(schema.AgentKey("")), func(r map[string]any) { r["tags"] = []string{"red"} }), "the count of tag/"},
		{"term count of a term no agent has", func(es []schema.Entry) []schema.Entry {
			return append(es, schema.Entry{Key: schema.TermCountBaseKey(schema.Term{Kind: schema.TermTag, Value: "ghost"}), Value: []byte("1")})
		}, "the count of tag/"},
		{"count key of a create missing", drop(schema.CreateCounts.Prefix), "agents are counted"},
		{"object counted twice by a create", editCreateCounts(func(v string) string { return v + "\n" + v }), "holds deltas adding up to"},
		{"count key of a create naming no count", editCreateCounts(func(string) string { return "widgets" }), "is not '<what>'"},
		{"term count base of 0", func(es []schema.Entry) []schema.Entry {
			return append(es, schema.Entry{Key: schema.TermCountBaseKey(schema.Term{Kind: schema.TermTag, Value: "ghost"}), Value: []byte("0")})
		}, "has no base"},
		{"tool without index entry", drop(schema.ToolIndex.Prefix), "has a record but no index entry"},
		{"tool without name entry", drop(schema.ToolNames.Prefix), "has no name entry"},
		{"name entry of no tool", drop(schema.Tools.Prefix), "which has no record"},
		{"one-sided tool attachment", drop(schema.ToolAgents.Prefix), "which does not list it"},
		{"mcp tool without its mapping", drop(schema.MCPServerTools.Prefix), "has no mapping entry"},
		{"mcp server without its name entry", drop(schema.MCPServerNames.Prefix), `(name "remote") has no name entry`},
		{"mapping of a server without a record", drop(schema.MCPServers.Prefix), "which has no record"},
		{"mapping of a tool of another server", edit(schema.Tools.Prefix, func(r map[string]any) {
			r["metadata_"] = map[string]any{"mcp": map[string]any{"server_id": "mcp_server-other"}}
		}, `"external_mcp"`), "which is not one of its tools"},
		{"idempotency record without its expiry entry", drop(schema.ActorIdempotencyExpiry.Prefix), "want exactly one at that time"},
		{"expiry entry without its record", drop(schema.ActorIdempotency.Prefix), "which does not exist"},
		{"ref naming no object", func(es []schema.Entry) []schema.Entry {
			for i, e := range es {
				if strings.HasPrefix(string(e.Key), schema.GitRefs.Prefix) {
					es[i].Value = []byte(strings.Repeat("0", 40))
				}
			}
			return es
		}, "which is not an object of its repository"},
		{"repository of no agent", func(es []schema.Entry) []schema.Entry {
			return append(es, schema.Entry{Key: schema.GitObjectKey("agent-gone", strings.Repeat("a", 40)), Value: []byte{3}})
		}, "its memory repository remains"},
		{"claim without its log entry", drop(schema.ClusterClaimLog.Prefix), "which its claim log lacks"},
		{"claim log entry newer than the claim", drop(schema.ClusterClaims.Prefix), "newer than its claim"},
		{"key of no family", func(es []schema.Entry) []schema.Entry {
			return append(es, schema.Entry{Key: []byte("stray/key"), Value: []byte("x")})
		}, "belongs to no family"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := schema.Check(c.break_(populated(t)))
			for _, p := range rep.Problems {
				if strings.Contains(p.Message, c.want) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got %+v", c.want, rep.Problems)
		})
	}
	t.Run("orphans of a deleted agent", func(t *testing.T) {
		es := populated(t)
		for _, f := range []*schema.Family{schema.AgentIndex, schema.Attachments, schema.BlockAgents} {
			for matchesAny(es, f.Prefix) {
				es = drop(f.Prefix)(es)
			}
		}
		es = drop(string(schema.AgentKey("")))(es)
		rep := schema.Check(es)
		found := false
		for _, p := range rep.Problems {
			found = found || strings.Contains(p.Message, "has no record, but its") && strings.Contains(p.Message, "messages, passages, runs remain")
		}
		if !found {
			t.Errorf("orphans not reported: %+v", rep.Problems)
		}
	})
	t.Run("an object with a damaged delta is not judged by its create's", func(t *testing.T) {
		// The agent populated deletes was counted by its create and
		// uncounted by deltas of its own: damaged, they may hold anything.
		es := populated(t)
		damaged := 0
		for i, e := range es {
			if f := schema.FamilyOf(e.Key); (f == schema.Counts || f == schema.TermCounts) && strings.Contains(string(e.Key), "/delta/") {
				es[i].Value, es[i].Damaged = nil, true
				damaged++
			}
		}
		if damaged == 0 {
			t.Fatal("no delta of an object to damage")
		}
		if rep := schema.Check(es); len(rep.Problems) != 0 {
			t.Errorf("damaged deltas reported: %+v", rep.Problems)
		}
	})
	t.Run("damage is skipped", func(t *testing.T) {
		es := populated(t)
		for i := range es {
			es[i].Value, es[i].Damaged = nil, true
		}
		if rep := schema.Check(es); len(rep.Problems) != 0 {
			t.Errorf("damaged store reported: %+v", rep.Problems)
		}
	})
}

func matchesAny(es []schema.Entry, prefix string) bool {
	for _, e := range es {
		if strings.HasPrefix(string(e.Key), prefix) {
			return true
		}
	}
	return false
}
