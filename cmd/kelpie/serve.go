package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/agent/files"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/api"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/embedding"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/pebble"
	"github.com/kelpie/kelpie/kv/postgres"
	"github.com/kelpie/kelpie/llm/providers"
	"github.com/kelpie/kelpie/mcpclient"
	"github.com/kelpie/kelpie/metrics"
	"github.com/kelpie/kelpie/sandbox"
	"github.com/kelpie/kelpie/schema"
	"github.com/kelpie/kelpie/ui"
)

// Defaults of 'kelpie serve'.
const (
	defaultAddr         = "127.0.0.1:8283" // the port Letta clients expect
	defaultDataDir      = "kelpie-data"    // relative to the working directory
	shutdownGracePeriod = 30 * time.Second // in-flight requests get this long to finish
)

type serveConfig struct {
	addr           string
	dataDir        string
	storage        string
	postgresURL    string
	idleTimeout    time.Duration
	maxActivations int
	defaultModel   string
	apiKey         string
	apiKeyFile     string
	logLevel       string
	minFreeSpace   string
	cacheSize      string
	memoryLimit    string
	acceptLoss     bool
	toolsNetwork   bool
	unsafeTools    bool
	mcpStdio       bool
	mcpPrivateURLs bool
	mcpCallTimeout time.Duration
	metricsAddr    string
	idemHorizon    time.Duration
	cluster        clusterConfig
	// onSyncWait, if set, is told each commit's wait for its WAL sync, as
	// the metrics are: a benchmark reports the disk's share of a latency.
	onSyncWait func(time.Duration)

	// fetch_webpage: may it reach internal addresses; the only hosts it
	// may fetch (comma-separated; empty for any public host).
	fetchPrivateURLs bool
	callbackPrivate  bool
	fetchHosts       string
	// web_search: the server's Exa key and Exa's API.
	exaKey, exaURL string
	// Uploaded PDFs: Mistral's OCR key and API.
	mistralKey, mistralURL string
}

// defaultGCPercent is the Go collector's GOGC when the environment sets
// none: 200 rather than Go's 100. A create allocates about 80 KB, nearly
// all of it dead once answered, while the live heap is small (Pebble's
// block cache is outside it), so collecting half as often took about 10%
// off the CPU of a create (BenchmarkHTTPCreateAgent), for a heap that may
// grow to 3x its live size between collections instead of 2x.
// --memory-limit still bounds it.
const defaultGCPercent = 200

// extraProcs is how many Go processors (Ps) beyond Go's default (the CPUs
// the process may use) the server runs when the environment sets no
// GOMAXPROCS. A goroutine in a blocking syscall keeps its P until the
// runtime takes it back, and one returning from it waits for a free P:
// Kelpie's commits pass through such syscalls (Pebble's WAL fsync, whose
// return wakes every commit waiting on it; socket writes), so with one P
// per CPU they queue behind busy Ps. Two more let them run at once and
// leave the sharing of CPUs to the kernel. On 2 CPUs (4 Ps rather than 2):
// durable creates at 16 clients +33%, turn overhead p50 -40% and p99 -20%
// at 32 agents, turns/s +20% at 128 agents (BenchmarkCreateFloorRatio,
// BenchmarkTurnLatency).
const extraProcs = 2

// defaultProcs is Go's own GOMAXPROCS, read before resolve changes it (it
// may run more than once in a process: tests, benchmarks).
var defaultProcs = runtime.GOMAXPROCS(0)

// resolve reads what the flags point at (the API key file) and applies
// the process settings (the collector's pace, the processors, the memory
// limit).
func (c *serveConfig) resolve() error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(defaultProcs + extraProcs)
	}
	if c.apiKeyFile != "" {
		if c.apiKey != "" {
			return errors.New("set --api-key or --api-key-file, not both")
		}
		data, err := os.ReadFile(c.apiKeyFile)
		if err != nil {
			return fmt.Errorf("--api-key-file: %w", err)
		}
		if c.apiKey = strings.TrimSpace(string(data)); c.apiKey == "" {
			return fmt.Errorf("--api-key-file %s is empty", c.apiKeyFile)
		}
	}
	if c.memoryLimit != "" {
		limit, err := parseBytes(c.memoryLimit)
		if err != nil {
			return fmt.Errorf("--memory-limit %q: %w", c.memoryLimit, err)
		}
		debug.SetMemoryLimit(limit)
	}
	return nil
}

// warnIfOpen warns when the server can be reached beyond this machine with
// no API key: anyone who reaches it can use and change every agent.
func warnIfOpen(addr net.Addr, apiKey string, log *slog.Logger) {
	tcp, ok := addr.(*net.TCPAddr)
	if apiKey == "" && ok && !tcp.IP.IsLoopback() {
		log.Warn("listening beyond loopback without an API key: anyone who can reach this address can read and change every agent; set --api-key-file", "addr", addr.String())
	}
}

// serveFlags defines the flags of 'kelpie serve', each with an environment
// variable as its fallback default.
func serveFlags(fs *flag.FlagSet, c *serveConfig) error {
	var bad envErrors
	fs.StringVar(&c.addr, "addr", env("KELPIE_ADDR", defaultAddr),
		"listen address, host:port (env KELPIE_ADDR)")
	fs.StringVar(&c.dataDir, "data-dir", env("KELPIE_DATA_DIR", defaultDataDir),
		"directory of the embedded store, created if missing (env KELPIE_DATA_DIR)")
	fs.StringVar(&c.storage, "storage", env("KELPIE_STORAGE", "pebble"),
		"storage engine: pebble (durable, on disk), postgres (a database, at --postgres-url) or memory (lost on exit) (env KELPIE_STORAGE)")
	fs.StringVar(&c.postgresURL, "postgres-url", env("KELPIE_POSTGRES_URL", ""),
		"the database of --storage postgres, such as postgres://kelpie@db.example:5432/kelpie?sslmode=verify-full; pool_max_conns=N in it bounds open transactions (default "+strconv.Itoa(postgres.DefaultMaxConns)+"); give the password by PGPASSWORD or ~/.pgpass, out of ps (env KELPIE_POSTGRES_URL)")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", bad.duration("KELPIE_IDLE_TIMEOUT", actor.DefaultIdleTimeout),
		"deactivate an agent's actor after this long without calls (env KELPIE_IDLE_TIMEOUT)")
	fs.IntVar(&c.maxActivations, "max-activations", bad.int("KELPIE_MAX_ACTIVATIONS", actor.DefaultMaxActivations),
		"most actors kept active at once; least recently used go first (env KELPIE_MAX_ACTIVATIONS)")
	fs.StringVar(&c.defaultModel, "default-model", env("KELPIE_DEFAULT_MODEL", ""),
		"model handle (provider/model) for agents created without one; empty rejects such creates (env KELPIE_DEFAULT_MODEL)")
	fs.StringVar(&c.apiKey, "api-key", env("KELPIE_API_KEY", ""),
		"if set, require 'Authorization: Bearer <key>' on every request but health (env KELPIE_API_KEY; prefer --api-key-file, which keeps the key out of ps)")
	fs.StringVar(&c.apiKeyFile, "api-key-file", env("KELPIE_API_KEY_FILE", ""),
		"read the API key from this file (env KELPIE_API_KEY_FILE)")
	fs.StringVar(&c.logLevel, "log-level", env("KELPIE_LOG_LEVEL", "info"),
		"debug, info, warn or error (env KELPIE_LOG_LEVEL)")
	fs.StringVar(&c.minFreeSpace, "min-free-space", env("KELPIE_MIN_FREE_SPACE", "256MiB"),
		"refuse writes (507) when the data dir's disk has less free space than this, such as 512MiB or 2GiB; 0 for no reserve (env KELPIE_MIN_FREE_SPACE)")
	fs.StringVar(&c.cacheSize, "cache-size", env("KELPIE_CACHE_SIZE", ""),
		"the size of the storage's block cache, such as 32MiB (default 128MiB): once filled it stays resident, and it is most of what an idle server's memory holds (env KELPIE_CACHE_SIZE)")
	fs.StringVar(&c.memoryLimit, "memory-limit", env("KELPIE_MEMORY_LIMIT", ""),
		"a soft memory limit for the process, such as 2GiB: the Go runtime collects and returns memory to the OS harder as it nears it (env KELPIE_MEMORY_LIMIT)")
	fs.DurationVar(&c.idemHorizon, "idempotency-horizon", bad.duration("KELPIE_IDEMPOTENCY_HORIZON", actor.DefaultIdempotencyHorizon),
		"how long a request's Idempotency-Key answers its retries; older records are deleted, and a later retry runs again (env KELPIE_IDEMPOTENCY_HORIZON)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", env("KELPIE_METRICS_ADDR", ""),
		"also serve GET /metrics on this address, without the API key, for a Prometheus scraper on a private network; /metrics on --addr is always served, behind the key (env KELPIE_METRICS_ADDR)")
	// No environment variable: accepting a loss is a decision for one
	// start, not a setting to leave on.
	fs.BoolVar(&c.acceptLoss, "accept-data-loss", false,
		"start even though storage lost acknowledged writes (a truncated or missing WAL file), after logging what is missing; without it such a store refuses to start")
	fs.BoolVar(&c.toolsNetwork, "tools-network", bad.bool("KELPIE_TOOLS_NETWORK", false),
		"give custom tools the host's network; by default they run with none (env KELPIE_TOOLS_NETWORK)")
	// No environment variable: running tool code unisolated is a decision
	// for one start.
	fs.BoolVar(&c.unsafeTools, "unsafe-tools-no-sandbox", false,
		"run custom tools without bubblewrap when it is missing (limits still apply, isolation does not); without it such a server refuses to run them")
	clusterFlags(fs, &c.cluster, &bad)
	fs.BoolVar(&c.mcpStdio, "mcp-stdio", bad.bool("KELPIE_MCP_STDIO", true),
		"allow stdio MCP servers: registering one runs its command on this host, unsandboxed, whenever its tools are used (env KELPIE_MCP_STDIO)")
	fs.BoolVar(&c.mcpPrivateURLs, "mcp-allow-private-urls", bad.bool("KELPIE_MCP_ALLOW_PRIVATE_URLS", false),
		"let HTTP MCP servers be on loopback, private or link-local addresses, which are refused by default as Letta refuses them (env KELPIE_MCP_ALLOW_PRIVATE_URLS)")
	fs.DurationVar(&c.mcpCallTimeout, "mcp-call-timeout", bad.duration("KELPIE_MCP_CALL_TIMEOUT", mcpclient.DefaultCallTimeout),
		"how long a call of an MCP tool may take before the model is told it did not answer (env KELPIE_MCP_CALL_TIMEOUT)")
	fs.BoolVar(&c.fetchPrivateURLs, "fetch-allow-private-urls", bad.bool("KELPIE_FETCH_ALLOW_PRIVATE_URLS", false),
		"let the fetch_webpage tool fetch loopback, private and internal addresses, which are refused by default (env KELPIE_FETCH_ALLOW_PRIVATE_URLS)")
	fs.BoolVar(&c.callbackPrivate, "callback-allow-private-urls", bad.bool("KELPIE_CALLBACK_ALLOW_PRIVATE_URLS", false),
		"let message batches' callback_url be on loopback, private or internal addresses, which are refused by default (env KELPIE_CALLBACK_ALLOW_PRIVATE_URLS)")
	fs.StringVar(&c.fetchHosts, "fetch-allow-hosts", env("KELPIE_FETCH_ALLOW_HOSTS", ""),
		"comma-separated hosts the fetch_webpage tool may fetch (each with its subdomains); empty for any public host (env KELPIE_FETCH_ALLOW_HOSTS)")
	fs.StringVar(&c.exaKey, "exa-api-key", env("EXA_API_KEY", ""),
		"Exa API key for the web_search tool (env EXA_API_KEY, as Letta reads it); an agent's EXA_API_KEY tool variable overrides it; without either, web_search answers that no key is set")
	fs.StringVar(&c.exaURL, "exa-url", env("KELPIE_EXA_URL", tool.DefaultExaURL),
		"Exa's API, or a compatible one, for the web_search tool (env KELPIE_EXA_URL)")
	fs.StringVar(&c.mistralKey, "mistral-api-key", env("MISTRAL_API_KEY", ""),
		"Mistral API key: uploaded PDFs are read with Mistral's OCR, as Letta reads them with one, so scanned PDFs can be read (env MISTRAL_API_KEY); without it, PDFs are read by their text layer")
	fs.StringVar(&c.mistralURL, "mistral-url", env("KELPIE_MISTRAL_URL", files.DefaultMistralURL),
		"Mistral's API, or a compatible one, for the OCR of uploaded PDFs (env KELPIE_MISTRAL_URL)")
	return errors.Join(bad...)
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c serveConfig
	if err := serveFlags(fs, &c); err != nil {
		fmt.Fprintf(stderr, "kelpie serve: %v\n", err)
		return 2
	}
	if code, ok := parseFlags(fs, serveUsage, args); !ok {
		return code
	}
	if c.maxActivations < 1 || c.idleTimeout <= 0 || c.idemHorizon <= 0 {
		fmt.Fprintf(stderr, "kelpie serve: --max-activations must be at least 1, --idle-timeout and --idempotency-horizon positive\n")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kelpie serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		fmt.Fprintf(stderr, "kelpie serve: --log-level %q: %v\n", c.logLevel, err)
		return 2
	}
	log := slog.New(api.LogRequestIDs(quietRepeats(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))))
	if err := c.resolve(); err != nil {
		fmt.Fprintf(stderr, "kelpie serve: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runServer(ctx, c, log, nil); err != nil {
		log.Error("kelpie serve failed", "err", err)
		return 1
	}
	return 0
}

// figures gives the inspector's status page the metrics' totals.
func figures(m *metrics.Metrics, log *slog.Logger) func(context.Context) []ui.Figure {
	return func(context.Context) []ui.Figure {
		totals, err := m.Totals()
		if err != nil {
			log.Error("reading the metrics for the status page", "err", err)
			return []ui.Figure{{Name: "metrics", Value: err.Error()}}
		}
		out := make([]ui.Figure, len(totals))
		for i, t := range totals {
			out[i] = ui.Figure{Name: t.Name, Value: strconv.FormatFloat(t.Value, 'f', -1, 64)}
		}
		return out
	}
}

const serveUsage = "Usage: kelpie serve [flags]\n\nRuns the Letta-compatible HTTP API. Flags (each falls back to its environment variable):\n\n"

// runServer serves until ctx ends, then shuts down gracefully. If ready is
// not nil it receives the listening address once the server accepts.
func runServer(ctx context.Context, c serveConfig, log *slog.Logger, ready chan<- string) error {
	maxConns, storageFDs := fdBudget()
	obs, err := newObservability(ctx, log)
	if err != nil {
		return err
	}
	defer obs.close(log)
	syncWait := obs.m.ObserveSyncWait
	if c.onSyncWait != nil {
		syncWait = func(d time.Duration) { obs.m.ObserveSyncWait(d); c.onSyncWait(d) }
	}
	st, err := openStore(ctx, c, storageFDs, log, syncWait)
	if err != nil {
		return err
	}
	store, where := st.db, st.where
	defer st.release()
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing storage", "err", err)
		}
	}()
	if n, err := schema.Upgrade(ctx, store); err != nil {
		return fmt.Errorf("data in %s: %w", where, err)
	} else if n > 0 {
		log.Info("data upgraded to the current layout", "version", schema.Version, "agents_indexed", n)
	}
	models := providers.FromEnv(os.Getenv)
	obs.hook(store, models)
	tools, err := sandbox.New(sandbox.Config{Unsafe: c.unsafeTools, Network: c.toolsNetwork})
	switch {
	case err != nil:
		log.Warn("custom tools: "+err.Error(), "flag", "--unsafe-tools-no-sandbox")
	case !tools.Isolated():
		log.Warn("custom tools run WITHOUT a sandbox (--unsafe-tools-no-sandbox): their code can read and change anything this server can")
	}
	var running atomic.Pointer[agent.Service]
	node, err := joinCluster(ctx, c, store, log, &running)
	if err != nil {
		return err
	}
	defer leaveCluster(node, log)
	rc := actor.Config{IdleTimeout: c.idleTimeout, MaxActivations: c.maxActivations, IdempotencyHorizon: c.idemHorizon, Observer: obs.invokes()}
	apiOpts := api.Options{KelpieVersion: version, APIKey: c.apiKey}
	if node != nil {
		rc.Placement, apiOpts.Cluster = node, node
	}
	svc, err := agent.New(agent.Config{
		Store:        store,
		Logger:       log,
		DefaultModel: c.defaultModel,
		LLM:          models,
		Embedder:     embedderFromEnv(log),
		Tools:        tools,
		MCP:          mcpclient.New(mcpclient.Config{CallTimeout: c.mcpCallTimeout, DisableStdio: !c.mcpStdio, AllowPrivate: c.mcpPrivateURLs}),
		Web:          tool.NewFetcher(tool.FetchConfig{AllowPrivate: c.fetchPrivateURLs, AllowHosts: splitList(c.fetchHosts)}),
		Search:       tool.NewSearcher(tool.SearchConfig{APIKey: c.exaKey, BaseURL: c.exaURL}),
		OCR:          files.NewOCR(files.OCRConfig{APIKey: c.mistralKey, BaseURL: c.mistralURL}),
		Callbacks:    agent.NewCallbacks(c.callbackPrivate),
		Runtime:      rc,
	})
	if err != nil {
		return err
	}
	running.Store(svc)
	obs.m.Watch(metrics.Sources{Service: svc, DiskUsage: st.diskUsage()})
	stopMetrics, err := serveMetrics(c.metricsAddr, obs.m, log)
	if err != nil {
		svc.Close(context.Background())
		return err
	}
	defer stopMetrics()
	if st.eng != nil {
		stopAdmin, err := serveAdmin(st.where, st.eng, log)
		if err != nil {
			svc.Close(context.Background())
			return err
		}
		defer stopAdmin()
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		svc.Close(context.Background())
		return fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	conns := newConnLimiter(maxConns, log)
	idle := &idleReleaser{evictAfter: c.idleTimeout}
	routes := http.NewServeMux()
	routes.Handle(ui.Prefix, ui.NewHandler(svc, ui.Options{APIKey: c.apiKey, Figures: figures(obs.m, log)}))
	routes.Handle("/", api.NewHandler(svc, obs.apiOptions(apiOpts)))
	srv := &http.Server{
		Handler:           idle.wrap(obs.handler(routes)),
		ReadHeaderTimeout: headerReadTimeout,
		ReadTimeout:       requestReadTimeout,
		IdleTimeout:       idleConnTimeout,
		ConnState:         conns.track,
	}
	warnIfOpen(ln.Addr(), c.apiKey, log)
	log.Info("kelpie listening", "addr", ln.Addr().String(), "storage", c.storage, "data_dir", where,
		"idle_timeout", c.idleTimeout, "max_activations", c.maxActivations, "max_connections", maxConns, "version", version)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	idleCtx, stopIdle := context.WithCancel(ctx)
	defer stopIdle()
	go idle.run(idleCtx, clock.Real{}, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(conns.listener(ln)) }()
	select {
	case err := <-errc:
		svc.Close(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	return shutdown(srv, conns, svc, log)
}

// Shutdown budgets: in-flight requests get shutdownGracePeriod to finish;
// then the service gets serviceCloseTimeout to cancel its turns (each
// records how it ended) and drain its actors.
const serviceCloseTimeout = 10 * time.Second

// shutdown stops accepting, closes idle connections at once, waits for the
// requests in flight (saying how many), then closes the service.
func shutdown(srv *http.Server, conns *connLimiter, svc *agent.Service, log *slog.Logger) error {
	log.Info("shutting down: idle connections closed, waiting for requests in flight", "in_flight", conns.busy(), "grace", shutdownGracePeriod)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGracePeriod)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown: requests still in flight after the grace period; closing their connections", "in_flight", conns.busy(), "grace", shutdownGracePeriod)
		srv.Close()
	}
	cctx, ccancel := context.WithTimeout(context.Background(), serviceCloseTimeout)
	defer ccancel()
	if err := svc.Close(cctx); err != nil {
		return fmt.Errorf("closing the agent service within %v: %w", serviceCloseTimeout, err)
	}
	log.Info("stopped")
	return nil
}

// openedStore is the store a server runs on.
type openedStore struct {
	db      *kv.DB
	eng     *pebble.Engine // nil for memory and Postgres storage
	where   string         // the data directory, or what memory storage means
	release func()         // lets the data directory go
}

// diskUsage reports the store's size on disk, nil for memory and Postgres
// storage (the database reports its own).
func (s openedStore) diskUsage() func() uint64 {
	if s.eng == nil {
		return nil
	}
	return s.eng.DiskUsage
}

// openStore opens the configured engine, holding the data directory for
// this process; onSyncWait is told how long each commit waited for its
// sync.
func openStore(ctx context.Context, c serveConfig, maxOpenFiles int, log *slog.Logger, onSyncWait func(time.Duration)) (openedStore, error) {
	switch c.storage {
	case "memory":
		return openedStore{db: kv.NewMemDB(), where: "(memory: nothing is kept after exit)", release: func() {}}, nil
	case "postgres":
		eng, err := openPostgres(ctx, c.postgresURL)
		if err != nil {
			return openedStore{}, err
		}
		return openedStore{db: kv.NewDB(eng), where: redactURL(c.postgresURL), release: func() {}}, nil
	case "pebble":
		var reserve int64 // "": the engine's default
		if c.minFreeSpace != "" {
			var err error
			if reserve, err = parseBytes(c.minFreeSpace); err != nil {
				return openedStore{}, fmt.Errorf("--min-free-space %q: %w", c.minFreeSpace, err)
			}
			if reserve == 0 {
				reserve = -1 // no reserve
			}
		}
		var cache int64 // 0: the engine's default
		if c.cacheSize != "" {
			var err error
			if cache, err = parseBytes(c.cacheSize); err != nil || cache <= 0 {
				return openedStore{}, fmt.Errorf("--cache-size %q: want a positive size, such as 64MiB", c.cacheSize)
			}
		}
		dir, err := filepath.Abs(c.dataDir)
		if err != nil {
			return openedStore{}, err
		}
		release, err := lockDataDir(dir)
		if err != nil {
			return openedStore{}, err
		}
		eng, err := pebble.Open(filepath.Join(dir, "pebble"), pebble.Options{Logger: log, MaxOpenFiles: maxOpenFiles,
			MinFreeBytes: reserve, AcceptLoss: c.acceptLoss, OnSyncWait: onSyncWait, CacheBytes: cache})
		if loss := (*pebble.Loss)(nil); errors.As(err, &loss) {
			err = fmt.Errorf("%w; restore the data dir from a backup, or start once with --accept-data-loss to go on without them", err)
		}
		if err != nil {
			release()
			return openedStore{}, err
		}
		return openedStore{db: kv.NewDB(eng), eng: eng, where: dir, release: release}, nil
	}
	return openedStore{}, fmt.Errorf("--storage %q: want pebble, postgres or memory", c.storage)
}

// openPostgres opens the Postgres engine at url, from --postgres-url.
func openPostgres(ctx context.Context, url string) (*postgres.Engine, error) {
	if url == "" {
		return nil, errors.New("--storage postgres needs --postgres-url (or KELPIE_POSTGRES_URL)")
	}
	eng, err := postgres.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", redactURL(url), err)
	}
	return eng, nil
}

// redactURL hides the password in a Postgres URL or key=value string, for
// logs and messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		s = u.Redacted()
	}
	return passwordField.ReplaceAllString(s, "password=xxxxx")
}

// passwordField is a password in a key=value string or a URL's query.
var passwordField = regexp.MustCompile(`password=('(\\.|[^'])*'|[^&\s]+)`)

// byteUnits are the units parseBytes takes, by suffix.
var byteUnits = []struct {
	suffix string
	bytes  int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// parseBytes reads a size such as 512MiB, 2GB or 1048576.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	unit := int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, unit = strings.TrimSpace(rest), u.bytes
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/unit {
		return 0, errors.New("want a size such as 512MiB, 2GiB or a number of bytes")
	}
	return n * unit, nil
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// envErrors collects malformed environment values met while defining flags.
type envErrors []error

func (e *envErrors) int(name string, def int) int {
	v := env(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		*e = append(*e, fmt.Errorf("%s=%q is not an integer", name, v))
	}
	return n
}

func (e *envErrors) duration(name string, def time.Duration) time.Duration {
	v := env(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		*e = append(*e, fmt.Errorf("%s=%q is not a duration such as 10m", name, v))
	}
	return d
}

func (e *envErrors) bool(name string, def bool) bool {
	v := env(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		*e = append(*e, fmt.Errorf("%s=%q is not true or false", name, v))
	}
	return b
}

// EmbeddingTimeout bounds one embeddings request of the server.
const EmbeddingTimeout = 60 * time.Second

// embedderFromEnv configures the embeddings providers as the model
// providers are (embedding.FromEnv), or none: archival search then ranks
// by words alone and says so.
func embedderFromEnv(log *slog.Logger) agent.Embedder {
	r := embedding.FromEnv(os.Getenv, &http.Client{Timeout: EmbeddingTimeout})
	if r.Providers() == 0 {
		log.Info("no embedding provider configured: archival search ranks by matching words (set OPENAI_API_KEY or OPENAI_BASE_URL)")
		return nil
	}
	return r
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
