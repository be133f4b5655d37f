package sim

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http/httptest"

	"github.com/kelpie/kelpie/agent"
)

// The audit: once the clients are done and the last process has stopped, a
// fresh process with every fault silenced reads back what is durable — each
// known agent's whole message history and each known block — for the
// checkers that compare what clients were told with what stayed.

// audit is what the final read found.
type audit struct {
	// call and ret are the logical times around the audit: after every
	// operation of the run.
	call, ret int64
	agents    map[string]*agentAudit
	blocks    map[string]*blockAudit
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

// audited returns the history of agentID when the audit read it.
func (a *audit) history(agentID string) ([]msgJSON, bool) {
	if a == nil {
		return nil, false
	}
	aa := a.agents[agentID]
	if aa == nil || aa.status != 200 {
		return nil, false
	}
	return aa.hist, true
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

	a := &audit{agents: map[string]*agentAudit{}, blocks: map[string]*blockAudit{}}
	a.call = s.rec.tick()
	get := func(path string) (int, []byte) {
		ctx, cancel := context.WithTimeout(inc.ctx, s.cfg.OpTimeout)
		defer cancel()
		req := httptest.NewRequest("GET", path, nil).WithContext(ctx)
		req.Header.Set("User-Agent", "kelpie-sim/1")
		rw := httptest.NewRecorder()
		inc.handlers[0].ServeHTTP(rw, req)
		body := rw.Body.Bytes()
		s.rec.event("audit GET %s -> %d %x", path, rw.Code, sha256.Sum256(body))
		return rw.Code, body
	}
	detail := func(body []byte) string {
		var d struct {
			Detail any `json:"detail"`
		}
		if json.Unmarshal(body, &d) == nil && d.Detail != nil {
			return fmt.Sprint(d.Detail)
		}
		return clipString(string(body), 200)
	}
	for _, id := range agents {
		aa := &agentAudit{hist: []msgJSON{}}
		a.agents[id] = aa
		after := ""
		for {
			path := fmt.Sprintf("/v1/agents/%s/messages?limit=%d&order=asc", id, agent.MaxListLimit)
			if after != "" {
				path += "&after=" + after
			}
			status, body := get(path)
			if status != 200 {
				aa.status, aa.detail, aa.hist = status, detail(body), nil
				if status == 404 && notFoundKind(aa.detail) != "agent" {
					aa.status = 500 // a 404 that is not about the agent
				}
				break
			}
			page, err := parseListing(body, false)
			if err != nil {
				aa.status, aa.detail, aa.hist = 500, err.Error(), nil
				break
			}
			aa.status = 200
			aa.hist = append(aa.hist, page...)
			groups := groupMessages(page)
			if len(groups) < agent.MaxListLimit {
				break
			}
			after = groups[len(groups)-1].id
		}
	}
	for _, id := range blocks {
		status, body := get("/v1/blocks/" + id)
		ba := &blockAudit{status: status}
		if status == 200 {
			if err := json.Unmarshal(body, &ba.block); err != nil {
				ba.status = 500
			}
		} else if status == 404 && notFoundKind(detail(body)) != "block" {
			ba.status = 500 // a 404 that is not about the block
		}
		a.blocks[id] = ba
	}
	a.ret = s.rec.tick()
	return a
}
