package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/files"
	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/embedding"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// LLMResolver finds the provider serving a model handle; *llm.Registry is
// one. (See loop.Resolver.)
type LLMResolver = loop.Resolver

// Embedder computes embeddings (*embedding.Registry is one).
type Embedder = embedding.Embedder

// Config configures a Service. Zero fields take the defaults they name.
type Config struct {
	// Store holds everything. Required.
	Store kv.Store
	// Clock is the one source of time of the service, its runtime and its
	// turns; nil means the system clock.
	Clock clock.Clock
	// Logger receives faults and recovered panics; nil discards them.
	Logger *slog.Logger
	// Rand is the source of new ids and names; nil means crypto/rand.
	Rand io.Reader
	// Runtime tunes the actor runtime (idle timeout, activation cap, ...);
	// its Store, Clock and Logger are the ones above.
	Runtime actor.Config
	// DefaultModel is the model handle of agents created without one; empty
	// means such a create is rejected, as Letta does.
	DefaultModel string
	// LLM resolves model handles to providers. nil means no provider is
	// configured: everything works but sending messages, which is answered
	// with an error saying what to configure.
	LLM LLMResolver
	// Tools runs custom tools (and derives their schemas from source); nil
	// means custom tools can be stored with an explicit json_schema but a
	// call of one answers the model with an error.
	Tools tool.Runner
	// MCP reaches MCP servers; nil means servers cannot be registered and
	// a call of an MCP tool answers the model with an error.
	MCP tool.MCPClient
	// Embedder embeds archival passages and search queries (outside the
	// agents' actors); nil means no embedding provider: archival search
	// ranks by words alone and says so.
	Embedder embedding.Embedder
	// Web fetches pages for the fetch_webpage tool; nil means the tool
	// answers that fetching is not enabled.
	Web *tool.Fetcher
	// Search searches the web for the web_search tool; nil means the tool
	// answers that no search key is set.
	Search *tool.Searcher
	// OCR reads uploaded PDFs (scanned ones too); nil reads PDFs by their
	// text layer alone.
	OCR *files.OCR
	// Callbacks calls batches' callback URLs; nil means NewCallbacks(false):
	// public addresses only.
	Callbacks *Callbacks
	// LLMRetryBackoff is the first pause before re-asking a model after a
	// transient error (rate limit, 5xx, timeout); it doubles per retry. 0
	// means loop.DefaultLLMRetryBackoff. A provider's Retry-After wins.
	LLMRetryBackoff time.Duration
}

// Service is the agent service, one surface per concern. Create it with
// New; close it with Close.
type Service struct {
	Agents        *Agents
	Blocks        *Blocks
	Conversations *Conversations
	Messages      *Messages
	Runs          *Runs
	Archival      *Archival
	Tools         *Tools
	Models        *Models
	Tags          *Tags
	Identities    *Identities
	Repos         *Repos
	MCPServers    *MCPServers
	Steps         *Steps
	Groups        *Groups
	Archives      *Archives
	Folders       *Folders
	Batches       *Batches

	core *core
}

// core is what every surface shares.
type core struct {
	store        kv.Store
	runtime      *actor.Runtime
	rand         io.Reader
	clock        clock.Clock
	log          *slog.Logger
	defaultModel string
	llm          LLMResolver
	tools        tool.Runner
	mcp          tool.MCPClient
	web          *tool.Fetcher
	search       *tool.Searcher
	ocr          *files.OCR
	callbacks    *Callbacks
	embedder     embedding.Embedder
	turns        *loop.Manager
	folder       *folder
	ingest       *ingester
}

// New starts the service's actor runtime over cfg.Store.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("agent: Config.Store is nil")
	}
	if r := cfg.Runtime; r.Store != nil || r.Clock != nil || r.Logger != nil {
		return nil, errors.New("agent: set Config.Store, Clock and Logger, not those of Config.Runtime: the service, its runtime and its turns share them")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Callbacks == nil {
		cfg.Callbacks = NewCallbacks(false)
	}
	c := &core{store: cfg.Store, rand: cfg.Rand, clock: cfg.Clock, log: cfg.Logger, defaultModel: cfg.DefaultModel, llm: cfg.LLM, tools: cfg.Tools, mcp: cfg.MCP, web: cfg.Web, search: cfg.Search, ocr: cfg.OCR, embedder: cfg.Embedder, callbacks: cfg.Callbacks}
	rc := cfg.Runtime
	rc.Store, rc.Clock, rc.Logger = cfg.Store, cfg.Clock, cfg.Logger
	rt, err := actor.NewRuntime(rc, map[string]actor.Behavior{
		schema.AgentNamespace:     agentActor{c},
		schema.BlockNamespace:     blockActor{c},
		schema.IdentityNamespace:  identityActor{c},
		schema.ToolNamespace:      toolActor{},
		schema.MCPServerNamespace: mcpServerActor{},
		schema.GroupNamespace:     groupActor{c},
		schema.ArchiveNamespace:   archiveActor{},
		schema.FolderNamespace:    folderActor,
		schema.BatchNamespace:     batchActor,
	})
	if err != nil {
		return nil, err
	}
	c.runtime = rt
	c.turns = loop.NewManager(loop.Config{
		Store: turnStore{c}, Clock: cfg.Clock, Logger: cfg.Logger, NewID: c.newID,
		LLM: cfg.LLM, RetryBackoff: cfg.LLMRetryBackoff, Tools: cfg.Tools, MCP: cfg.MCP, Embedder: cfg.Embedder,
		Web: cfg.Web, Search: cfg.Search, Agents: agentMessenger{c},
	})
	c.folder = startFolder(c)
	c.ingest = startIngest(c)
	return &Service{
		Agents: &Agents{c}, Blocks: &Blocks{c}, Conversations: &Conversations{c}, Messages: &Messages{c},
		Runs: &Runs{c}, Archival: &Archival{c}, Tools: &Tools{c}, Models: &Models{c}, Tags: &Tags{c}, Identities: &Identities{c}, MCPServers: &MCPServers{c},
		Steps: &Steps{c}, Groups: &Groups{c}, Repos: &Repos{c}, Archives: &Archives{c}, Folders: &Folders{c},
		Batches: &Batches{c}, core: c,
	}, nil
}

// Close cancels the turns in progress (each records that it was
// cancelled), drains in-flight operations and stops the runtime. It does
// not close the store.
func (s *Service) Close(ctx context.Context) error {
	s.core.folder.stop()
	s.core.ingest.stop()
	if err := s.core.turns.Close(ctx); err != nil {
		return err
	}
	return s.core.runtime.Close(ctx)
}

// TurnStats counts the turns running and the turn locks held.
type TurnStats = loop.Stats

// Stats reports the turns running and the turn locks held: all zero once
// every turn has ended.
func (s *Service) Stats() TurnStats { return s.core.turns.Stats() }

// Counts are the service's totals since it started and its runtime's
// counters, for metrics.
type Counts struct {
	Turns   loop.Counts
	Runtime actor.Stats
}

// Counts reports the service's totals so far and its runtime's counters.
func (s *Service) Counts() Counts {
	return Counts{Turns: s.core.turns.Counts(), Runtime: s.core.runtime.Stats()}
}

// Clock is the service's clock.
func (s *Service) Clock() clock.Clock { return s.core.clock }

// Logger is the service's logger.
func (s *Service) Logger() *slog.Logger { return s.core.log }

type idempotencyKeyType struct{}

// WithIdempotencyKey returns a context that makes the service apply the next
// mutation at most once for key (see actor.WithIdempotencyKey).
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyType{}, key)
}

func idempotencyKey(ctx context.Context) string {
	key, _ := ctx.Value(idempotencyKeyType{}).(string)
	return key
}

// invoke runs op on an actor and decodes its JSON result into out (if not
// nil). The actor's namespace and op scope the idempotency key, so one key
// does not answer two different operations.
func (c *core) invoke(ctx context.Context, id actor.ID, op string, payload any, out any, opts ...actor.InvokeOption) error {
	data, err := schema.Encode(payload)
	if err != nil {
		return err
	}
	return c.invokeEncoded(ctx, id, op, data, out, opts...)
}

// invokeEncoded is invoke with the payload encoded (by schema.Encode).
func (c *core) invokeEncoded(ctx context.Context, id actor.ID, op string, data []byte, out any, opts ...actor.InvokeOption) error {
	if key := scopedIdempotencyKey(ctx, id.Namespace, op); key != "" {
		opts = append(opts, actor.WithIdempotencyKey(key))
	}
	res, err := c.runtime.Invoke(ctx, id, op, data, opts...)
	return decodeAnswer(res, err, out)
}

// answered is invoke's answer from an earlier attempt of the request's
// idempotency key, on whichever actor of namespace it ran: found is false
// when there was none (or the request has no key).
func (c *core) answered(ctx context.Context, namespace, op string, payload any, out any) (found bool, err error) {
	key := scopedIdempotencyKey(ctx, namespace, op)
	if key == "" {
		return false, nil
	}
	data, err := schema.Encode(payload)
	if err != nil {
		return false, err
	}
	res, found, err := c.runtime.Answered(ctx, key, op, data)
	if !found && err == nil {
		return false, nil
	}
	return true, decodeAnswer(res, err, out)
}

// scopedIdempotencyKey is the request's idempotency key for op on actors
// of namespace: a key reused for another operation is another request.
func scopedIdempotencyKey(ctx context.Context, namespace, op string) string {
	if key := idempotencyKey(ctx); key != "" {
		return namespace + "\x00" + op + "\x00" + key
	}
	return ""
}

// decodeAnswer decodes an actor's answer into out; into a *[]byte it is
// kept encoded.
func decodeAnswer(res []byte, err error, out any) error {
	if errors.Is(err, actor.ErrIdempotencyMismatch) {
		return letta.Invalidf("Idempotency-Key was already used for a different request")
	}
	if err != nil || out == nil {
		return err
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = res
		return nil
	}
	return schema.Decode(res, out)
}

// Encoded is an answer as a write committed it, encoded as JSON (by
// schema.Encode, the encoding of every response): the API sends these
// bytes as they are instead of decoding and encoding them again.
type Encoded[T any] []byte

// JSON returns the encoding.
func (e Encoded[T]) JSON() []byte { return e }

// Decode decodes the answer.
func (e Encoded[T]) Decode() (*T, error) {
	var v T
	if err := schema.Decode(e, &v); err != nil {
		return nil, fmt.Errorf("decode %T answer: %w", v, err)
	}
	return &v, nil
}

// decoded decodes an encoded answer, passing an error on.
func decoded[T any](e Encoded[T], err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return e.Decode()
}

// newID returns a random id of prefix.
func (c *core) newID(prefix string) (string, error) { return letta.NewID(c.rand, prefix) }

// newIDFor returns the id of a new entity: random, or derived from the
// request's idempotency key so that a retry addresses the same actor as the
// first attempt and finds its idempotency record there.
func (c *core) newIDFor(ctx context.Context, prefix string) (string, error) {
	if key := idempotencyKey(ctx); key != "" {
		return letta.DerivedID(prefix, "create", prefix, key), nil
	}
	return c.newID(prefix)
}

// newActorFor is newIDFor for an entity that is an actor of its own, with
// the options to invoke it with: a random id is actor.Minted (no actor can
// have it yet); one derived from an idempotency key is not, as a retry
// finds the actor of its first attempt.
func (c *core) newActorFor(ctx context.Context, prefix string) (string, []actor.InvokeOption, error) {
	if idempotencyKey(ctx) != "" {
		id, err := c.newIDFor(ctx, prefix)
		return id, nil, err
	}
	id, err := c.newID(prefix)
	return id, []actor.InvokeOption{actor.Minted()}, err
}

// read runs fn in a read-only snapshot. A snapshot is consistent by
// construction (see kv.DB), so a read never fails, or waits, because of
// concurrent writes.
func (c *core) read(ctx context.Context, fn func(kv.Txn) error) error {
	txn, err := c.store.Begin(ctx)
	if err != nil {
		return err
	}
	defer txn.Discard()
	return fn(txn)
}

// readRecord reads one record by the id a request gave as field (an id
// with prefix), and renders it for the client.
func readRecord[R, T any](ctx context.Context, c *core, field, prefix, id string, get func(kv.Txn, string) (*R, error), render func(*R) *T) (*T, error) {
	if err := letta.CheckID(field, prefix, id); err != nil {
		return nil, err
	}
	var out *T
	err := c.read(ctx, func(txn kv.Txn) error {
		rec, err := get(txn, id)
		if err == nil {
			out = render(rec)
		}
		return err
	})
	return out, err
}

// turnStore is the loop's view of the service. Turn operations carry their
// own idempotency (otids, run ids), so a request's Idempotency-Key is not
// applied to them; their payloads are handed over in process
// (actor.WithLocal), never encoded, as nothing else reads them: without a
// key the actor takes no fingerprint of the payload. The loop's operations
// change nothing of what they are given, and most answer in process too
// (actor.WithLocalReply).
type turnStore struct{ c *core }

func (t turnStore) Read(ctx context.Context, fn func(kv.Txn) error) error { return t.c.read(ctx, fn) }

func (t turnStore) Invoke(ctx context.Context, agentID, op string, payload, out any) error {
	return t.invoke(ctx, agentID, op, payload, out)
}

func (t turnStore) InvokeEarly(ctx context.Context, agentID, op string, payload, out any) (durable func() error, err error) {
	err = t.invoke(ctx, agentID, op, payload, out, actor.WithEarlyReply(&durable))
	return durable, err
}

func (t turnStore) invoke(ctx context.Context, agentID, op string, payload, out any, opts ...actor.InvokeOption) error {
	var local any
	opts = append(opts, actor.WithLocal(payload), actor.WithLocalReply(&local))
	res, err := t.c.runtime.Invoke(ctx, schema.AgentActor(agentID), op, nil, opts...)
	if err != nil || out == nil || local == nil {
		return decodeAnswer(res, err, out)
	}
	return setLocal(out, local)
}

// setLocal sets *out to the answer an operation gave in process, a
// pointer to a value of out's type.
func setLocal(out, local any) error {
	dst, src := reflect.ValueOf(out), reflect.ValueOf(local)
	if dst.Kind() != reflect.Pointer || src.Type() != dst.Type() {
		return fmt.Errorf("agent: an answer of type %T for a result of type %T", local, out)
	}
	dst.Elem().Set(src.Elem())
	return nil
}
