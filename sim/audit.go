package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/kelpie/kelpie/agent"
)

// The audit: once the clients are done and the last process has stopped, a
// fresh process with every fault silenced reads back what is durable — each
// known agent's whole message history, each known block, and every listing
// (walk.go) — for the checkers that compare what clients were told with
// what stayed.

// audit is what the final read found.
type audit struct {
	// call and ret are the logical times around the audit: after every
	// operation of the run.
	call, ret int64
	agents    map[string]*agentAudit
	blocks    map[string]*blockAudit
	// listings are the listings read whole and walked, by path.
	listings map[string]*listingAudit
	// agentCount is what GET /v1/agents/count answered (-1: no answer);
	// tagCounts what GET /v1/agents/count?tags=<tag> answered, by tag.
	agentCount int
	tagCounts  map[string]int
	// searches are the searches of passages for their own text, by
	// passage id (archival.go).
	searches map[string]*passageSearch
	// repos are the repositories of the agents created with one, by
	// agent id (memfs.go).
	repos map[string]*repoAudit
	// contexts are the agents' default conversations and what of them is
	// in context, by agent id (compaction.go).
	contexts map[string]*contextAudit
}

type agentAudit struct {
	// status is 200 when hist is the whole history, 404 when the agent is
	// gone; anything else means the history could not be read.
	status int
	detail string
	hist   []msgJSON
}

type blockAudit struct {
	status int
	block  blockJSON
}

// serve sends a request outside the history (the audit's reads, a push's
// fetch): its path's faults go to a trail of its own, which it returns,
// with whether it had no answer within timeout.
func (inc *incarnation) serve(timeout time.Duration, method, path string, reqBody []byte) (status int, body []byte, t *trail, timedOut bool) {
	op := &opRecord{ID: -1, request: request{Method: method, Path: path, Body: reqBody}, trail: &trail{}}
	ctx, cancel := context.WithTimeout(withOp(inc.ctx, op), timeout)
	defer cancel()
	req := httptest.NewRequest(method, path, bytes.NewReader(reqBody)).WithContext(ctx)
	req.Header.Set("User-Agent", "kelpie-sim/1")
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rw := httptest.NewRecorder()
	inc.handlers[0].ServeHTTP(rw, req)
	return rw.Code, rw.Body.Bytes(), op.trail, errors.Is(ctx.Err(), context.DeadlineExceeded)
}

// history returns the history of agentID when the audit read it.
func (a *audit) history(agentID string) ([]msgJSON, bool) {
	if a == nil {
		return nil, false
	}
	read := a.agents[agentID]
	if read == nil || read.status != 200 {
		return nil, false
	}
	return read.hist, true
}

// runAudit starts the audit process, reads, and stops it.
func (s *system) runAudit(w *world) *audit {
	s.inj.silence()
	s.mu.Lock()
	inc, err := s.start()
	s.mu.Unlock()
	if err != nil {
		s.violation("liveness", "", "the audit process did not start: %v", err)
		return nil
	}
	defer func() {
		inc.end()
		inc.shutdown(s.cfg.OpTimeout)
	}()
	w.mu.Lock()
	agents := append([]string(nil), w.agents...)
	blocks := append([]string(nil), w.blocks...)
	w.mu.Unlock()

	r := &auditReader{sys: s, inc: inc}
	a := &audit{agents: map[string]*agentAudit{}, blocks: map[string]*blockAudit{}}
	a.call = s.rec.tick()
	for _, id := range agents {
		a.agents[id] = r.history(id)
	}
	for _, id := range blocks {
		a.blocks[id] = r.block(id)
	}
	a.listings = r.walkListings()
	a.searches = r.searchPassages(a)
	a.agentCount = r.agentCount("/v1/agents/count")
	a.tagCounts = map[string]int{}
	for _, t := range agentTags {
		a.tagCounts[t] = r.agentCount("/v1/agents/count?tags=" + t)
	}
	a.repos = r.repos(w, agents)
	a.contexts = r.contexts(a)
	a.ret = s.rec.tick()
	return a
}

// auditReader reads from the audit process.
type auditReader struct {
	sys *system
	inc *incarnation
}

// get reads path, and records it in the trace. The audit's faults are
// silenced, but values damaged at rest stay so: a read that failed is a
// violation unless it met one (excused), or it is a 404.
func (r *auditReader) get(path string) (status int, body []byte, excused bool) {
	return r.do("GET", path, nil)
}

// do sends a request that reads (a GET, or a search's POST) as get does.
func (r *auditReader) do(method, path string, reqBody []byte) (status int, body []byte, excused bool) {
	return r.judge(method, path, r.maybeOwned(false, method, path, reqBody))
}

// The audit's requests that may commit (a fetch brings a repository up to
// its agent's blocks) need the agent's owner: in a cluster, a node of the
// audit's process may still be renewing its first lease, and answers 503
// until it has. Such a request is tried again, auditRetryPause apart, up
// to auditAttempts times before it is judged.
const (
	auditAttempts   = 20
	auditRetryPause = 100 * time.Millisecond
)

// doOwned is do for a request that may commit.
func (r *auditReader) doOwned(method, path string, reqBody []byte) (status int, body []byte, excused bool) {
	return r.judge(method, path, r.maybeOwned(true, method, path, reqBody))
}

// served is one answer of the audit's process.
type served struct {
	status   int
	body     []byte
	t        *trail
	timedOut bool
}

// maybeOwned sends a request, again after a 503 when owned.
func (r *auditReader) maybeOwned(owned bool, method, path string, reqBody []byte) served {
	for attempt := 1; ; attempt++ {
		var s served
		s.status, s.body, s.t, s.timedOut = r.inc.serve(r.sys.cfg.OpTimeout, method, path, reqBody)
		if !owned || s.status != http.StatusServiceUnavailable || s.timedOut || attempt == auditAttempts {
			return s
		}
		time.Sleep(auditRetryPause)
	}
}

// judge records an answer of the audit in the trace and judges it: only a
// 200 or a 404 is expected, or a failure that met a damaged value.
func (r *auditReader) judge(method, path string, s served) (status int, body []byte, excused bool) {
	status, body, t, timedOut := s.status, s.body, s.t, s.timedOut
	r.sys.rec.event("audit %s %s -> %d %x", method, path, status, sha256.Sum256(body))
	_, excused = t.has(pathStorage)
	switch {
	case timedOut:
		r.sys.violation("liveness", "", "the audit's %s %s had no answer within %s (%d)", method, path, r.sys.cfg.OpTimeout, status)
	case status != 200 && status != 404 && !excused:
		r.sys.violation("unexpected-error", "", "the audit's %s %s answered %d with every fault silenced and no damaged value on its path: %s %s",
			method, path, status, errorDetail(body), t)
	}
	return status, body, excused
}

// errorDetail is the detail of an error response.
func errorDetail(body []byte) string {
	var d struct {
		Detail any `json:"detail"`
	}
	if json.Unmarshal(body, &d) == nil && d.Detail != nil {
		return fmt.Sprint(d.Detail)
	}
	return clipString(string(body), 200)
}

// history reads an agent's whole message history, a page of the most the
// API gives at a time.
func (r *auditReader) history(id string) *agentAudit { return r.historyIn(id, "") }

// historyIn reads the history of one of an agent's conversations ("": all
// of them; "default": its default conversation).
func (r *auditReader) historyIn(id, conv string) *agentAudit {
	read := &agentAudit{hist: []msgJSON{}}
	after := ""
	for {
		path := fmt.Sprintf("/v1/agents/%s/messages?limit=%d&order=asc", id, agent.MaxListLimit)
		if conv != "" {
			path += "&conversation_id=" + conv
		}
		if after != "" {
			path += "&after=" + after
		}
		status, body, _ := r.get(path)
		if status != 200 {
			read.status, read.detail, read.hist = status, errorDetail(body), nil
			if status == 404 && notFoundKind(read.detail) != "agent" {
				read.status = 500 // a 404 that is not about the agent
			}
			return read
		}
		page, err := parseListing(body, false)
		if err != nil {
			read.status, read.detail, read.hist = 500, err.Error(), nil
			return read
		}
		read.status = 200
		read.hist = append(read.hist, page...)
		groups := groupMessages(page)
		if len(groups) < agent.MaxListLimit {
			return read
		}
		after = groups[len(groups)-1].id
	}
}

// block reads a block.
func (r *auditReader) block(id string) *blockAudit {
	status, body, _ := r.get("/v1/blocks/" + id)
	read := &blockAudit{status: status}
	if status == 200 {
		if err := json.Unmarshal(body, &read.block); err != nil {
			read.status = 500
		}
	} else if status == 404 && notFoundKind(errorDetail(body)) != "block" {
		read.status = 500 // a 404 that is not about the block
	}
	return read
}

// pagedObjects is about how many agents, and how many blocks, a run's audit
// walks the listings of page by page (more pages would double a seed's
// time; seeds draw different ones). Every listing is read whole.
const pagedObjects = 3

// agentCount reads a count of agents at path; -1 if it failed (get judges
// the failure: only a count damaged at rest excuses it).
func (r *auditReader) agentCount(path string) int {
	status, body, _ := r.get(path)
	n := -1
	if status == 404 {
		r.sys.violation("audit", "", "GET %s answered 404: %s", path, errorDetail(body))
	}
	if status != 200 {
		return -1
	}
	if err := json.Unmarshal(body, &n); err != nil {
		r.sys.violation("audit", "", "GET %s answered 200 with %q: %v", path, clipString(string(body), 200), err)
		return -1
	}
	return n
}

// walkListings reads and walks every listing: of agents (also by each tag),
// blocks and runs,
// and for each agent listed its messages, conversations, runs, passages and
// blocks, and for each block listed its agents.
func (r *auditReader) walkListings() map[string]*listingAudit {
	walks := &walker{get: r.get, rng: newRand(r.sys.cfg.Seed, streamAudit)}
	out := map[string]*listingAudit{}
	walk := func(kind *listingKind, path, object string, pages bool) *listingAudit {
		listing := walks.walk(kind, path, object, pages)
		out[path] = listing
		return listing
	}
	agents := walk(agentsListing, "/v1/agents", "", true)
	for _, t := range agentTags {
		walk(agentsListing, "/v1/agents?tags="+t, "", true)
	}
	blocks := walk(blocksListing, "/v1/blocks", "", true)
	walk(runsListing, "/v1/runs", "", true)
	for _, a := range agents.whole {
		pages := walks.rng.IntN(len(agents.whole)) < pagedObjects
		walk(messagesListing, "/v1/agents/"+a.id+"/messages", a.id, pages)
		walk(conversationsListing, "/v1/conversations?agent_id="+a.id, a.id, pages)
		walk(runsListing, "/v1/runs?agent_id="+a.id, a.id, pages)
		walk(passagesListing, "/v1/agents/"+a.id+"/archival-memory", a.id, pages)
		walk(agentBlocksListing, "/v1/agents/"+a.id+"/core-memory/blocks", a.id, pages)
	}
	for _, b := range blocks.whole {
		walk(blockAgentsListing, "/v1/blocks/"+b.id+"/agents", b.id, walks.rng.IntN(len(blocks.whole)) < pagedObjects)
	}
	return out
}
