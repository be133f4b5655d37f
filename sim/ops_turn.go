package sim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/kelpie/kelpie/agent"
)

// Operations on agents' messages, conversations, archival memory and runs.

type (
	sendMessageOp             struct{}
	listMessagesOp            struct{}
	createConversationOp      struct{}
	sendConversationMessageOp struct{}
	listConversationsOp       struct{}
	createPassageOp           struct{}
	deletePassageOp           struct{}
	listPassagesOp            struct{}
	listRunsOp                struct{}
)

// ---- messages -----------------------------------------------------------------

// sendMessageOp is not a write in the sense of traits: it carries an otid
// rather than an Idempotency-Key, and the message checkers, not the
// linearizability model, check what it did.
func (sendMessageOp) traits() traits { return traits{turn: true, needs: needAgent} }

func (sendMessageOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
	op.set("POST", "/v1/agents/"+op.Agent+"/messages", c.message(op, false))
}

// message draws a user message with its otid for op to send, and whether
// it streams: the request's body. With explicit, the body says whether it
// streams even when it does not.
func (c *client) message(op *opRecord, explicit bool) any {
	op.Otid = c.token("o")
	op.Streaming = c.rng.IntN(3) == 0
	op.StreamTokens = op.Streaming && c.rng.IntN(2) == 0
	type input struct {
		Role    string `json:"role"`
		Content string `json:"content"`
		Otid    string `json:"otid"`
	}
	body := struct {
		Messages     []input `json:"messages"`
		Streaming    *bool   `json:"streaming,omitempty"`
		StreamTokens bool    `json:"stream_tokens,omitempty"`
		MaxSteps     int     `json:"max_steps,omitempty"`
	}{
		Messages:     []input{{Role: "user", Content: fmt.Sprintf("hello %s please remember %s", op.Otid, c.token("w")), Otid: op.Otid}},
		StreamTokens: op.StreamTokens,
	}
	if op.Streaming || explicit {
		body.Streaming = &op.Streaming
	}
	if c.rng.IntN(6) == 0 {
		body.MaxSteps = 1 + c.rng.IntN(3)
	}
	return body
}

func (sendMessageOp) parse(op *opRecord) error { return op.parseSend() }

func (op *opRecord) parseSend() error {
	var err error
	op.Send, err = parseSend(op.Resp, op.Streaming, op.StreamTokens)
	return err
}

func (sendMessageOp) learn(*world, *opRecord, *opRecord) {}

func (sendMessageOp) model(b *modelBuilder, op *opRecord, res modelResult) { b.agentExisted(op, res) }

func (listMessagesOp) traits() traits        { return traits{needs: needAgent} }
func (listMessagesOp) listing() *listingKind { return messagesListing }

func (listMessagesOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
	if c.rng.IntN(4) == 0 {
		op.set("GET", fmt.Sprintf("/v1/agents/%s/messages?limit=%d&order=desc", op.Agent, 1+c.rng.IntN(8)), nil)
	} else {
		op.set("GET", fmt.Sprintf("/v1/agents/%s/messages?limit=%d&order=asc", op.Agent, agent.MaxListLimit), nil)
	}
}

func (listMessagesOp) parse(op *opRecord) error {
	var err error
	op.RespMsgs, err = parseListing(op.Resp, strings.Contains(op.Path, "order=desc"))
	return err
}

func (listMessagesOp) learn(*world, *opRecord, *opRecord) {}

func (listMessagesOp) model(b *modelBuilder, op *opRecord, res modelResult) { b.agentExisted(op, res) }

// agentExisted models what an answer about an agent's messages, runs,
// conversations or passages tells: the agent existed while the call ran, or
// not.
func (b *modelBuilder) agentExisted(op *opRecord, res modelResult) {
	switch res {
	case resultOK:
		b.add(op, agentObj(op.Agent), modelOp{kind: agentRead, present: true})
	case resultAbsent:
		b.add(op, agentObj(op.Agent), modelOp{kind: agentRead, present: false})
	}
}

// ---- conversations ------------------------------------------------------------

func (createConversationOp) traits() traits { return traits{write: true, needs: needAgent} }

func (createConversationOp) generate(c *client, op *opRecord) {
	op.Agent, op.Value = c.pickAgent(), c.token("c")
	op.set("POST", "/v1/conversations?agent_id="+url.QueryEscape(op.Agent), map[string]string{"summary": op.Value})
}

func (createConversationOp) parse(op *opRecord) error {
	op.RespConv = new(idJSON)
	return json.Unmarshal(op.Resp, op.RespConv)
}

func (createConversationOp) learn(w *world, op, root *opRecord) {
	if op.Out == okOutcome {
		w.seeConversation(op.RespConv.ID, root.Agent)
	}
}

func (createConversationOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	b.agentExisted(op, res)
	if res == resultOK {
		b.c.listed.conversations[op.RespConv.ID] = op
	}
}

// sendConversationMessageOp sends a message to a conversation of an agent:
// a turn of that agent like any other (op.Agent names it), checked by the
// same message checkers.
func (sendConversationMessageOp) traits() traits {
	return traits{turn: true, needs: needConversation}
}

func (sendConversationMessageOp) generate(c *client, op *opRecord) {
	op.Conversation = c.pickConversation()
	op.Agent = c.w.convAgent[op.Conversation]
	// The route streams unless told not to.
	op.set("POST", "/v1/conversations/"+op.Conversation+"/messages", c.message(op, true))
}

func (sendConversationMessageOp) parse(op *opRecord) error { return op.parseSend() }

func (sendConversationMessageOp) learn(*world, *opRecord, *opRecord) {}

func (sendConversationMessageOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	b.agentExisted(op, res)
}

func (listConversationsOp) traits() traits        { return traits{needs: needAgent} }
func (listConversationsOp) listing() *listingKind { return conversationsListing }

func (listConversationsOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
	op.set("GET", c.page(conversationsListing, "/v1/conversations?agent_id="+url.QueryEscape(op.Agent)), nil)
}

func (listConversationsOp) parse(op *opRecord) error { return json.Unmarshal(op.Resp, &op.RespConvs) }

func (listConversationsOp) learn(w *world, op, _ *opRecord) {
	for _, conv := range op.RespConvs {
		w.seeConversation(conv.ID, conv.AgentID)
	}
}

func (listConversationsOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	b.agentExisted(op, res)
}

// page draws the order and the size of a page of a listing at path.
func (c *client) page(k *listingKind, path string) string {
	asc := c.rng.IntN(2) == 0
	limit := maxListing
	if c.rng.IntN(2) == 0 {
		limit = 1 + c.rng.IntN(4)
	}
	return k.page(path, asc, limit, "", "")
}

// ---- archival memory ----------------------------------------------------------

// A passage is embedded first: an embeddings fault fails its create.
func (createPassageOp) traits() traits {
	return traits{write: true, callsModel: true, needs: needAgent}
}

func (createPassageOp) generate(c *client, op *opRecord) {
	op.Agent, op.Value = c.pickAgent(), c.token("p")
	op.set("POST", "/v1/agents/"+op.Agent+"/archival-memory", map[string]string{"text": op.Value})
}

func (createPassageOp) parse(op *opRecord) error { return json.Unmarshal(op.Resp, &op.RespPassages) }

func (createPassageOp) learn(w *world, op, root *opRecord) {
	for _, p := range op.RespPassages {
		w.seePassage(p.ID, root.Agent)
	}
}

func (createPassageOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	b.agentExisted(op, res)
	if res == resultOK {
		for _, p := range op.RespPassages {
			b.c.listed.passages[p.ID] = op
		}
	}
}

func (deletePassageOp) traits() traits { return traits{write: true, needs: needPassage} }

func (deletePassageOp) generate(c *client, op *opRecord) {
	op.Passage = c.pickPassage()
	op.Agent = c.w.passageAgent[op.Passage]
	op.set("DELETE", "/v1/agents/"+op.Agent+"/archival-memory/"+op.Passage, nil)
}

func (deletePassageOp) parse(*opRecord) error { return nil }

func (deletePassageOp) learn(w *world, op, _ *opRecord) {
	if op.Out == okOutcome || op.Status == 404 {
		w.passageLive[op.Passage] = false
	}
}

func (deletePassageOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	b.agentExisted(op, res)
	switch res {
	case resultOK:
		b.c.listed.passageGone[op.Passage] = op
		b.c.listed.passageMayGo[op.Passage] = true
	case resultUnknown:
		b.c.listed.passageMayGo[op.Passage] = true
	}
}

func (listPassagesOp) traits() traits        { return traits{needs: needAgent} }
func (listPassagesOp) listing() *listingKind { return passagesListing }

func (listPassagesOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
	op.set("GET", c.page(passagesListing, "/v1/agents/"+op.Agent+"/archival-memory"), nil)
}

func (listPassagesOp) parse(op *opRecord) error { return json.Unmarshal(op.Resp, &op.RespPassages) }

func (listPassagesOp) learn(w *world, op, _ *opRecord) {
	for _, p := range op.RespPassages {
		w.seePassage(p.ID, op.Agent)
	}
}

func (listPassagesOp) model(b *modelBuilder, op *opRecord, res modelResult) { b.agentExisted(op, res) }

// ---- runs ---------------------------------------------------------------------

func (listRunsOp) traits() traits        { return traits{listing: true} }
func (listRunsOp) listing() *listingKind { return runsListing }

// generate: mostly the runs of one agent, else every run.
func (listRunsOp) generate(c *client, op *opRecord) {
	path := "/v1/runs"
	if c.rng.IntN(3) > 0 {
		if op.Agent = c.pickAgent(); op.Agent != "" {
			path += "?agent_id=" + url.QueryEscape(op.Agent)
		}
	}
	op.set("GET", c.page(runsListing, path), nil)
}

func (listRunsOp) parse(op *opRecord) error { return json.Unmarshal(op.Resp, &op.RespRuns) }

func (listRunsOp) learn(*world, *opRecord, *opRecord) {}

// model: nothing; the agent filter need not name an agent that exists.
func (listRunsOp) model(*modelBuilder, *opRecord, modelResult) {}
