package sim

import (
	"fmt"
	"strings"

	"github.com/kelpie/kelpie/agent"
)

// Operations on agents' messages.

type (
	sendMessageOp  struct{}
	listMessagesOp struct{}
)

// sendMessageOp is not a write in the sense of traits: it carries an otid
// rather than an Idempotency-Key, and the message checkers, not the
// linearizability model, check what it did.
func (sendMessageOp) traits() traits { return traits{turn: true, needs: needAgent} }

func (sendMessageOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
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
		Streaming    bool    `json:"streaming,omitempty"`
		StreamTokens bool    `json:"stream_tokens,omitempty"`
		MaxSteps     int     `json:"max_steps,omitempty"`
	}{
		Messages:  []input{{Role: "user", Content: fmt.Sprintf("hello %s please remember %s", op.Otid, c.token("w")), Otid: op.Otid}},
		Streaming: op.Streaming, StreamTokens: op.StreamTokens,
	}
	if c.rng.IntN(6) == 0 {
		body.MaxSteps = 1 + c.rng.IntN(3)
	}
	op.set("POST", "/v1/agents/"+op.Agent+"/messages", body)
}

func (sendMessageOp) parse(op *opRecord) error {
	var err error
	op.Send, err = parseSend(op.Resp, op.Streaming, op.StreamTokens)
	return err
}

func (sendMessageOp) learn(*world, *opRecord, *opRecord) {}

func (sendMessageOp) model(b *modelBuilder, op *opRecord, res modelResult) { b.agentExisted(op, res) }

func (listMessagesOp) traits() traits { return traits{needs: needAgent} }

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

// agentExisted models what an answer about an agent's messages tells: the
// agent existed while the call ran, or not.
func (b *modelBuilder) agentExisted(op *opRecord, res modelResult) {
	switch res {
	case resultOK:
		b.add(op, agentObj(op.Agent), modelOp{kind: agentRead, present: true})
	case resultAbsent:
		b.add(op, agentObj(op.Agent), modelOp{kind: agentRead, present: false})
	}
}
