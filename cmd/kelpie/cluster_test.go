package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/postgres"
	"github.com/kelpie/kelpie/kv/postgres/pgtest"
	"github.com/kelpie/kelpie/llm/llmtest"
	"github.com/kelpie/kelpie/schema"
)

// clusterLeaseTTL is the nodes' lease in the cluster test: short, so that
// takeovers happen within the test.
const clusterLeaseTTL = 2 * time.Second

// clusterNode is one 'kelpie serve' of the test's cluster.
type clusterNode struct {
	id, addr  string
	advertise string // where its peers reach it (through a cutProxy for one node)
	pgURL     string // its database URL (through a cutProxy for one node)
	srv       *kelpietest.Server
	up        atomic.Bool // the test has not killed or cut it
}

func (n *clusterNode) url() string { return "http://" + n.addr }

// testCluster is three nodes on one Postgres, an LLM double, and the
// outages the test caused, by node.
type testCluster struct {
	t      *testing.T
	bin    string
	env    []string
	secret string
	nodes  []*clusterNode

	mu      sync.Mutex
	outages map[string][][2]time.Time // node -> when it was cut off: [from, to] (to zero: still out)
	killed  map[string]time.Time      // incarnation -> when the test killed it
}

func (c *testCluster) start(n *clusterNode) {
	c.t.Helper()
	env := append(c.env, "KELPIE_POSTGRES_URL="+n.pgURL)
	n.srv = kelpietest.Start(c.t, c.bin, env, "--addr", n.addr, "--storage", "postgres", "--node-id", n.id,
		"--advertise-addr", n.advertise, "--cluster-secret-file", c.secret, "--lease-ttl", clusterLeaseTTL.String(),
		"--default-model", "openai/gpt-4o-mini", "--idle-timeout", "1s")
	n.up.Store(true)
}

func (c *testCluster) outage(node string, from time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outages[node] = append(c.outages[node], [2]time.Time{from, {}})
}

// recovered ends node's outage: its lease may still be judged lapsed for a
// lease TTL after it is back.
func (c *testCluster) recovered(node string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.outages[node]
	o[len(o)-1][1] = at.Add(clusterLeaseTTL)
}

// kill kills n with SIGKILL, noting its incarnation as dead from now on.
func (c *testCluster) kill(n *clusterNode, pgURL string) time.Time {
	c.t.Helper()
	txn, err := clusterStore(c.t, pgURL).Begin(c.t.Context())
	if err != nil {
		c.t.Fatal(err)
	}
	defer txn.Discard()
	rec, found, err := schema.GetClusterNode(txn, n.id)
	if err != nil || !found {
		c.t.Fatalf("record of %s: %v (found %v)", n.id, err, found)
	}
	n.up.Store(false)
	at := time.Now()
	c.mu.Lock()
	c.killed[rec.Incarnation] = at
	c.mu.Unlock()
	n.srv.Kill(c.t)
	return at
}

// mayTake reports whether a claim at t could rightly replace prev: prev's
// holder was dead (killed before t) or cut off from the database at t.
func (c *testCluster) mayTake(prev schema.ClusterClaim, t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.killed[prev.Incarnation]; ok && !t.Before(at) {
		return true
	}
	for _, o := range c.outages[prev.Node] {
		if !t.Before(o[0]) && (o[1].IsZero() || !t.After(o[1])) {
			return true
		}
	}
	return false
}

// agentLog is what clients sent to one agent and which answers they got.
type agentLog struct {
	edits []edit // of the human block; index 0 is the create
	turns []edit // user messages
}

// clusterLoad is the clients' traffic: creates, block edits and turns,
// each to a random live node.
type clusterLoad struct {
	c      *testCluster
	client *http.Client
	stop   atomic.Bool
	wg     sync.WaitGroup

	mu      sync.Mutex
	agents  map[string]*agentLog
	acked   map[string]int // by operation
	unknown map[string]int // answers that leave the outcome unknown (503, no answer)
}

func (l *clusterLoad) node(rng *rand.Rand) *clusterNode {
	for {
		n := l.c.nodes[rng.IntN(len(l.c.nodes))]
		if n.up.Load() {
			return n
		}
	}
}

// send sends one request and classifies its answer: acked (200), unknown
// (503 asking for a retry, or no answer), or an error the test reports.
func (l *clusterLoad) send(op, method, url string, body, out any) bool {
	st, err := call(l.client, method, url, body, out)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case st == 200 && err == nil:
		l.acked[op]++
		return true
	case st == 0 || st == 503:
		l.unknown[op]++
	default:
		l.c.t.Errorf("%s: %d %v", op, st, err)
	}
	return false
}

func (l *clusterLoad) run(clients int) {
	for c := range clients {
		l.wg.Go(func() { l.client1(c) })
	}
}

func (l *clusterLoad) client1(c int) {
	rng := rand.New(rand.NewPCG(uint64(c), 9))
	var mine []string
	for n := 0; !l.stop.Load(); n++ {
		node := l.node(rng)
		switch k := rng.IntN(5); {
		case len(mine) == 0 || k == 0:
			value := fmt.Sprintf("c%d-create-%d", c, n)
			var a agentJSON
			if l.send("create", "POST", node.url()+"/v1/agents", map[string]any{
				"name":          fmt.Sprintf("c%d-%d", c, n),
				"memory_blocks": []map[string]any{{"label": "human", "value": value}, {"label": "persona", "value": "p"}},
			}, &a) {
				l.mu.Lock()
				l.agents[a.ID] = &agentLog{edits: []edit{{value: value, acked: true}}}
				l.mu.Unlock()
				mine = append(mine, a.ID)
			}
		case k <= 2:
			id := mine[rng.IntN(len(mine))]
			value := fmt.Sprintf("c%d-edit-%d", c, n)
			l.attempt(id, func(a *agentLog) *[]edit { return &a.edits }, value, func() bool {
				return l.send("edit", "PATCH", node.url()+"/v1/agents/"+id+"/core-memory/blocks/human", map[string]any{"value": value}, nil)
			})
		default:
			id := mine[rng.IntN(len(mine))]
			text := fmt.Sprintf("turn c%d-%d", c, n)
			l.attempt(id, func(a *agentLog) *[]edit { return &a.turns }, text, func() bool {
				return l.send("turn", "POST", node.url()+"/v1/agents/"+id+"/messages",
					map[string]any{"messages": []map[string]any{{"role": "user", "content": text}}}, nil)
			})
		}
	}
}

// attempt records value as sent to agent id (in the list of its log that
// list picks), sends it, and records whether it was acknowledged.
func (l *clusterLoad) attempt(id string, list func(*agentLog) *[]edit, value string, send func() bool) {
	l.mu.Lock()
	sent := list(l.agents[id])
	*sent = append(*sent, edit{value: value})
	i := len(*sent) - 1
	l.mu.Unlock()
	ok := send()
	l.mu.Lock()
	(*sent)[i].acked = ok
	l.mu.Unlock()
}

func (l *clusterLoad) finish() {
	l.stop.Store(true)
	l.wg.Wait()
}

// Spec: three kelpie serve nodes on one Postgres serve any request on any
// node. A node killed with SIGKILL mid-load loses its agents to the others
// once its lease lapses; a node cut off from the database (a TCP proxy
// that goes silent) stops serving its agents with a retryable 503, and the
// others take them over; healed and restarted, the nodes serve again. At
// the end every acknowledged create, edit and turn is there, no run is
// left running, every takeover recorded in the claim log took an agent
// from a node the test had killed or cut off, and kelpie check passes.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three servers on a Postgres server")
	}
	db := pgtest.NewServer(t)
	pgURL, err := db.CreateDatabase("kelpie")
	if err != nil {
		t.Fatal(err)
	}
	double := llmtest.NewServer(t)
	double.SetDefault(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "noted", Delay: 150 * time.Millisecond, ChunkSize: 4}
	})
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, fmt.Appendf(nil, "%016x%016x", rand.Uint64(), rand.Uint64()), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, bin: kelpietest.Build(t), secret: secret, outages: map[string][][2]time.Time{}, killed: map[string]time.Time{},
		env: []string{"OPENAI_BASE_URL=" + double.OpenAIBaseURL(), "OPENAI_API_KEY=sk-llmtest"}}
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host) // between n3 and the database
	proxied := *u
	proxied.Host = proxy.Addr()
	n2addr := freeAddr(t)
	peers := newCutProxy(t, n2addr) // between n2 and its peers
	for i, n := range []*clusterNode{
		{addr: freeAddr(t), pgURL: pgURL},
		{addr: n2addr, advertise: peers.Addr(), pgURL: pgURL},
		{addr: freeAddr(t), pgURL: proxied.String()},
	} {
		n.id = fmt.Sprintf("n%d", i+1)
		if n.advertise == "" {
			n.advertise = n.addr
		}
		c.nodes = append(c.nodes, n)
		c.start(n)
	}
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	checkMembers(t, n2, 3)

	l := &clusterLoad{c: c, client: &http.Client{Timeout: 15 * time.Second},
		agents: map[string]*agentLog{}, acked: map[string]int{}, unknown: map[string]int{}}
	l.run(9)
	time.Sleep(3 * time.Second)

	// SIGKILL the node with the most agents, mid-turn.
	victim := n1
	owned := ownedBy(t, pgURL, victim.id)
	killed := c.kill(victim, pgURL)
	moved := firstWrite(t, l.client, n2, owned)
	t.Logf("killed %s owning %d agents; first write to one of them through %s after %v (lease TTL %v)",
		victim.id, len(owned), n2.id, moved.Sub(killed).Round(time.Millisecond), clusterLeaseTTL)
	time.Sleep(2 * time.Second)
	c.start(victim)
	time.Sleep(2 * time.Second)

	// Cut n3 off from the database.
	owned = ownedBy(t, pgURL, n3.id)
	if len(owned) == 0 {
		t.Fatalf("%s owns no agent to lose", n3.id)
	}
	n3.up.Store(false)
	cut := time.Now()
	c.outage(n3.id, cut)
	proxy.Cut()
	refused := refusedWrite(t, n3, owned[0])
	t.Logf("cut %s off from the database: it refused a write to its agent with a retryable 503 after %v", n3.id, refused.Sub(cut).Round(time.Millisecond))
	moved = firstWrite(t, l.client, n1, owned)
	t.Logf("the first write to one of its %d agents through %s succeeded %v after the cut", len(owned), n1.id, moved.Sub(cut).Round(time.Millisecond))
	proxy.Heal()
	// n3 is out until it has renewed its lease again.
	c.recovered(n3.id, serving(t, n3))
	n3.up.Store(true)
	time.Sleep(3 * time.Second)

	// Cut n2 off from its peers, not from the database: it keeps its
	// agents and serves them; the others cannot forward to it.
	owned = ownedBy(t, pgURL, n2.id)
	if len(owned) == 0 {
		t.Fatalf("%s owns no agent", n2.id)
	}
	peers.Refuse()
	cut = time.Now()
	refused = refusedWrite(t, n1, owned[0])
	firstWrite(t, l.client, n2, owned[:1])
	t.Logf("cut %s off from its peers: %s answered a retryable 503 for its agent after %v; %s kept serving it",
		n2.id, n1.id, refused.Sub(cut).Round(time.Millisecond), n2.id)
	time.Sleep(2 * clusterLeaseTTL)
	if now := ownedBy(t, pgURL, n2.id); !slices.Contains(now, owned[0]) {
		t.Errorf("%s lost agent %s while cut off from its peers only", n2.id, owned[0])
	}
	firstWrite(t, l.client, n2, owned[:1])
	peers.Heal()
	time.Sleep(time.Second)
	l.finish()
	t.Logf("acknowledged %v; outcome unknown %v", l.acked, l.unknown)

	checkAcknowledged(t, l)
	checkForwardedStream(t, c, pgURL)
	checkRunsClosed(t, l)
	checkTakeovers(t, c, pgURL)
	for _, n := range c.nodes {
		if err := n.srv.Stop(t); err != nil {
			t.Errorf("%s: graceful shutdown: %v", n.id, err)
		}
	}
	out, err := exec.Command(c.bin, "check", "--storage", "postgres", "--postgres-url", pgURL).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: nothing damaged") {
		t.Fatalf("kelpie check on the database: %v\n%s", err, out)
	}
}

// serving waits until n says, on GET /v1/cluster, that it holds its lease
// (it renewed it lately), and returns when.
func serving(t *testing.T, n *clusterNode) time.Time {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var m struct {
			Nodes []struct {
				Self, Live bool
			} `json:"nodes"`
		}
		if _, err := call(http.DefaultClient, "GET", n.url()+"/v1/cluster", nil, &m); err == nil {
			for _, x := range m.Nodes {
				if x.Self && x.Live {
					return time.Now()
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not renew its lease within a minute", n.id)
	return time.Time{}
}

// checkMembers: GET /v1/cluster on n lists want live nodes.
func checkMembers(t *testing.T, n *clusterNode, want int) {
	t.Helper()
	var m struct {
		Nodes []struct {
			ID      string `json:"id"`
			Address string `json:"address"`
			Live    bool   `json:"live"`
		} `json:"nodes"`
	}
	if _, err := call(http.DefaultClient, "GET", n.url()+"/v1/cluster", nil, &m); err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, x := range m.Nodes {
		if x.Live && x.Address != "" {
			live++
		}
	}
	if live != want {
		t.Fatalf("GET /v1/cluster on %s: %+v, want %d live nodes", n.id, m, want)
	}
}

// clusterStore opens the cluster's database, for the checks.
func clusterStore(t *testing.T, pgURL string) kv.Store {
	t.Helper()
	eng, err := postgres.Open(t.Context(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	db := kv.NewDB(eng)
	t.Cleanup(func() { db.Close() })
	return db
}

// claimsIn returns every claim log entry, by actor.
func claimsIn(t *testing.T, pgURL string) map[string][]schema.ClusterClaim {
	t.Helper()
	txn, err := clusterStore(t, pgURL).Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	kvs, err := txn.Scan(kv.PrefixRange([]byte(schema.ClusterClaimLog.Prefix)), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]schema.ClusterClaim{}
	for _, e := range kvs {
		var cl schema.ClusterClaim
		if err := schema.Decode(e.Value, &cl); err != nil {
			t.Fatal(err)
		}
		k := strings.TrimPrefix(string(e.Key), schema.ClusterClaimLog.Prefix)
		actor := k[:strings.LastIndexByte(k, '/')]
		out[actor] = append(out[actor], cl)
	}
	return out
}

// ownedBy returns the agents whose latest claim is node's.
func ownedBy(t *testing.T, pgURL, node string) []string {
	t.Helper()
	var ids []string
	for actor, cls := range claimsIn(t, pgURL) {
		if id, ok := strings.CutPrefix(actor, schema.AgentNamespace+"/"); ok && cls[len(cls)-1].Node == node {
			ids = append(ids, id)
		}
	}
	return ids
}

// firstWrite edits the agents through n until one edit succeeds, and
// returns when it did.
func firstWrite(t *testing.T, client *http.Client, n *clusterNode, agents []string) time.Time {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for i := 0; time.Now().Before(deadline); i++ {
		id := agents[i%len(agents)]
		if st, _ := call(client, "PATCH", n.url()+"/v1/agents/"+id+"/core-memory/blocks/persona", map[string]any{"value": "moved"}, nil); st == 200 {
			return time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no write to the agents %v through %s succeeded within a minute", agents, n.id)
	return time.Time{}
}

// refusedWrite sends writes of agent through n until one is refused with
// a retryable 503, and returns when.
func refusedWrite(t *testing.T, n *clusterNode, agent string) time.Time {
	t.Helper()
	client := &http.Client{Timeout: 2 * clusterLeaseTTL}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		body := strings.NewReader(`{"value":"cut"}`)
		req, _ := http.NewRequest("PATCH", n.url()+"/v1/agents/"+agent+"/core-memory/blocks/persona", body)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 503 && resp.Header.Get("X-Should-Retry") == "true" {
				return time.Now()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never refused a write to %s after losing the database", n.id, agent)
	return time.Time{}
}

// checkAcknowledged: every acknowledged create, edit and turn is there.
func checkAcknowledged(t *testing.T, l *clusterLoad) {
	t.Helper()
	base := l.c.nodes[1].url()
	for id, log := range l.agents {
		var a agentJSON
		if _, err := call(l.client, "GET", base+"/v1/agents/"+id, nil, &a); err != nil {
			t.Errorf("acknowledged create of %s lost: %v", id, err)
			continue
		}
		got := ""
		for _, b := range a.Blocks {
			if b.Label == "human" {
				got = b.Value
			}
		}
		if ok, last := lastAckedOrLater(log.edits, got); !ok {
			t.Errorf("agent %s: human block is %q; last acknowledged value %q", id, got, last)
		}
		if len(log.turns) == 0 {
			continue
		}
		resp, err := l.client.Get(base + "/v1/agents/" + id + "/messages?limit=1000")
		if err != nil {
			t.Fatal(err)
		}
		history, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("messages of %s: %d %v", id, resp.StatusCode, err)
		}
		for _, turn := range log.turns {
			if turn.acked && !strings.Contains(string(history), turn.value) {
				t.Errorf("agent %s: acknowledged turn %q is not in its history", id, turn.value)
			}
		}
	}
}

// checkForwardedStream: a streamed turn sent to a node that does not own
// the agent is forwarded to the owner and streamed back whole.
func checkForwardedStream(t *testing.T, c *testCluster, pgURL string) {
	t.Helper()
	owned := ownedBy(t, pgURL, c.nodes[1].id)
	if len(owned) == 0 {
		t.Fatalf("%s owns no agent", c.nodes[1].id)
	}
	body := strings.NewReader(`{"messages":[{"role":"user","content":"streamed through another node"}],"stream_tokens":true}`)
	req, _ := http.NewRequest("POST", c.nodes[2].url()+"/v1/agents/"+owned[0]+"/messages/stream", body)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || len(resp.Header.Values("X-Request-Id")) != 1 ||
		!strings.Contains(string(data), `"message_type":"assistant_message"`) || !strings.HasSuffix(string(data), "data: [DONE]\n\n") {
		t.Fatalf("stream through %s of %s's agent: %d %v %v\n%s", c.nodes[2].id, c.nodes[1].id, resp.StatusCode, resp.Header, err, data)
	}
	if got := ownedBy(t, pgURL, c.nodes[1].id); !slices.Contains(got, owned[0]) {
		t.Errorf("the agent moved to another node instead of being forwarded to %s", c.nodes[1].id)
	}
}

// checkRunsClosed: after one more turn each (which closes a run its
// owner's death left open, as on one node), no agent has a run still
// running.
func checkRunsClosed(t *testing.T, l *clusterLoad) {
	t.Helper()
	failed := 0
	for id, log := range l.agents {
		if len(log.turns) == 0 {
			continue
		}
		node := l.c.nodes[len(id)%len(l.c.nodes)]
		if st, err := call(l.client, "POST", node.url()+"/v1/agents/"+id+"/messages",
			map[string]any{"messages": []map[string]any{{"role": "user", "content": "last"}}}, nil); st != 200 {
			t.Errorf("last turn of %s through %s: %v", id, node.id, err)
			continue
		}
		var runs []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if _, err := call(l.client, "GET", node.url()+"/v1/runs?agent_id="+id, nil, &runs); err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			switch r.Status {
			case "completed":
			case "failed":
				failed++
			default:
				t.Errorf("agent %s: run %s is %s after its agent's next turn", id, r.ID, r.Status)
			}
		}
	}
	t.Logf("%d runs closed as failed (cut short by the kill or the cut)", failed)
}

// checkTakeovers: the claims of each agent have epochs 1, 2, ..., each
// naming the holder it replaced; every claim that took an agent from
// another node took it from an incarnation the test had killed, or from a
// node it had cut off, at that time; and there were some.
func checkTakeovers(t *testing.T, c *testCluster, pgURL string) {
	t.Helper()
	takeovers := 0
	for actor, cls := range claimsIn(t, pgURL) {
		for i, cl := range cls {
			if cl.Epoch != uint64(i+1) {
				t.Errorf("%s: claim %d has epoch %d", actor, i, cl.Epoch)
			}
			if i > 0 && cl.From != cls[i-1].Node {
				t.Errorf("%s: claim at epoch %d says it took over from %s, but %s held it", actor, cl.Epoch, cl.From, cls[i-1].Node)
			}
			if cl.From == "" || cl.From == cl.Node {
				continue
			}
			takeovers++
			if !c.mayTake(cls[i-1], cl.At) {
				t.Errorf("%s: %s took it at epoch %d from %s at %v, while %s was up", actor, cl.Node, cl.Epoch, cl.From, cl.At, cl.From)
			}
		}
	}
	if takeovers == 0 {
		t.Error("no agent changed owner: the test checked no takeover")
	}
	t.Logf("%d agents taken over from a node that was down", takeovers)
}

// Spec: the cluster's flags are refused, saying why, unless they come
// together on Postgres; each has its environment fallback.
func TestClusterFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--storage", "memory", "--node-id", "n1"}, nil, "--node-id needs --storage postgres"},
		{[]string{"--storage", "memory"}, map[string]string{"KELPIE_NODE_ID": "n1"}, "--node-id needs --storage postgres"},
		{[]string{"--storage", "memory", "--advertise-addr", "127.0.0.1:1"}, nil, "need --node-id"},
		{[]string{"--storage", "memory"}, map[string]string{"KELPIE_CLUSTER_SECRET_FILE": "/nonexistent"}, "need --node-id"},
	} {
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		var out, errOut strings.Builder
		code := run(append([]string{"serve", "--addr", "127.0.0.1:0"}, c.args...), &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("serve %q with %v: exit %d, %s; want an error saying %q", c.args, c.env, code, errOut.String(), c.want)
		}
		for k := range c.env {
			os.Unsetenv(k)
		}
	}
	var out, errOut strings.Builder
	t.Setenv("KELPIE_LEASE_TTL", "soon")
	if code := run([]string{"serve"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "KELPIE_LEASE_TTL") {
		t.Errorf("bad KELPIE_LEASE_TTL: exit %d, %s", code, errOut.String())
	}
}
