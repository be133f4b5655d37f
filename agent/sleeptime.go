package agent

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Sleep-time agents (Letta's enable_sleeptime): an agent created with
// enable_sleeptime gets, in its create's transaction, a sleep-time agent
// sharing its memory blocks and a sleeptime group managed by it. Every
// sleeptime_agent_frequency finished turns of the main agent, each of the
// group's sleep-time agents runs a background turn over the transcript of
// the main agent's messages since the last such run, and edits the shared
// memory with its tools. The counting and the transcript's bounds commit
// in the group's actor, so a transcript is handed out once; the run itself
// is started after the main agent's turn ends, as Letta's background task
// is: a crash between the two loses that one sleep-time run (the next
// transcript starts after it).

// sleeptimePersona is the persona block of a sleep-time agent.
const sleeptimePersona = "I maintain the memory of another agent. After its conversations I am shown what was said; " +
	"I keep its memory blocks accurate and current with my memory tools, adding what is worth remembering and " +
	"correcting what has changed. I do not talk to its user."

// sleeptimeReminder opens each transcript a sleep-time agent is given.
const sleeptimeReminder = "You are a sleep-time agent: you run in the background after a conversation between " +
	"another agent (\"assistant\" below) and its user (\"user\" below) has happened. You are not that agent. " +
	"Review the conversation and update the memory blocks you share with it, using your memory tools, with " +
	"anything worth keeping. Your persona block may hold further instructions.\n\nMessages:\n"

// createSleeptimeGroup writes, in the transaction creating main, its
// sleep-time agent (sharing blocks) and the group main manages.
func createSleeptimeGroup(c *core, txn kv.Txn, main *schema.Agent, blocks []*schema.Block, now time.Time) (*schema.Group, error) {
	id, err := c.newID("agent")
	if err != nil {
		return nil, err
	}
	blockIDs := make([]string, len(blocks))
	for i, b := range blocks {
		blockIDs[i] = b.ID
	}
	llmConfig := main.LLMConfig
	req := letta.CreateAgentRequest{
		Name: new(main.Name + "-sleeptime"), AgentType: new("sleeptime_agent"), BlockIDs: blockIDs,
		MemoryBlocks: []letta.CreateBlock{{Label: new("memory_persona"), Value: new(sleeptimePersona)}},
		LLMConfig:    &llmConfig, EmbeddingConfig: main.EmbeddingConfig, ProjectID: main.ProjectID,
	}
	s, sblocks, _, err := buildAgent(c, txn, id, req, now, nil)
	if err != nil {
		return nil, err
	}
	if _, err := window.OpenNewAgent(txn, s, sblocks, now); err != nil {
		return nil, err
	}
	if err := storeNewAgent(txn, s); err != nil {
		return nil, err
	}
	gid, err := c.newID("group")
	if err != nil {
		return nil, err
	}
	return newGroup(txn, gid, letta.GroupCreate{AgentIDs: []string{id}, Description: new(""),
		ManagerConfig: &letta.ManagerConfig{ManagerType: letta.ManagerSleeptime, ManagerAgentID: &main.ID,
			SleeptimeAgentFrequency: new(DefaultSleeptimeFrequency)}}, now, main.ID)
}

// ensureSleeptimeGroup gives an existing agent its sleep-time agent and
// group (an update turning enable_sleeptime on), unless it has them.
func ensureSleeptimeGroup(c *core, txn kv.Txn, a *schema.Agent, now time.Time) error {
	if a.AgentType == "sleeptime_agent" {
		return nil
	}
	g, err := managedGroup(txn, a.ID)
	if err != nil || g != nil && g.ManagerType == letta.ManagerSleeptime {
		return err
	}
	blocks, err := memory.AgentBlocks(txn, a.ID)
	if err != nil {
		return err
	}
	_, err = createSleeptimeGroup(c, txn, a, blocks, now)
	return err
}

// sleeptimeCheck is the payload of opSleeptimeCheck: the main agent's
// turn that just ended, and its last message.
type sleeptimeCheck struct {
	ManagerID string `json:"manager_id"`
	UpTo      uint64 `json:"up_to"`
	UpToID    string `json:"up_to_id"`
}

// sleeptimeDue is what opSleeptimeCheck answers: whether the sleep-time
// agents run now, over the main agent's messages From+1..To.
type sleeptimeDue struct {
	Run      bool     `json:"run"`
	From     uint64   `json:"from,omitempty"`
	To       uint64   `json:"to,omitempty"`
	AgentIDs []string `json:"agent_ids,omitempty"`
}

// checkSleeptime counts a finished turn of the group's manager and, when
// the frequency says so, hands out the transcript's bounds.
func checkSleeptime(call *actor.Call, g *schema.Group, p sleeptimeCheck) ([]byte, error) {
	if g.ManagerType != letta.ManagerSleeptime || g.ManagerAgentID == nil || *g.ManagerAgentID != p.ManagerID || p.UpTo <= g.LastProcessedSeq {
		return schema.Encode(sleeptimeDue{})
	}
	n := deref(g.TurnsCounter) + 1
	g.TurnsCounter = &n
	due := sleeptimeDue{}
	if f := deref(g.SleeptimeAgentFrequency); f <= 0 || n%f == 0 {
		due = sleeptimeDue{Run: true, From: g.LastProcessedSeq, To: p.UpTo, AgentIDs: g.AgentIDs}
		g.LastProcessedSeq, g.LastProcessedMessageID = p.UpTo, &p.UpToID
	}
	was := *g
	g.UpdatedAt = call.Now
	if err := schema.PutGroup(call.Txn, g, &was); err != nil {
		return nil, err
	}
	return schema.Encode(due)
}

// afterTurn waits for a turn of an agent that manages a sleeptime group
// to end and then runs the group's sleep-time agents if they are due.
func (c *core) afterTurn(groupID, agentID string, t *loop.Turn) {
	ctx := context.Background()
	if _, err := t.Response(ctx); err != nil {
		return
	}
	if res := t.Result(); res.Error != "" {
		return // a failed turn is not a conversation to learn from
	}
	if err := c.runSleeptime(ctx, groupID, agentID); err != nil {
		c.log.Warn("agent: sleep-time agents did not run", "group", groupID, "agent", agentID, "error", err)
	}
}

func (c *core) runSleeptime(ctx context.Context, groupID, agentID string) error {
	var last *schema.Message
	err := c.read(ctx, func(txn kv.Txn) error {
		seq, err := schema.LastSeq(txn, agentID)
		if err != nil || seq == 0 {
			return err
		}
		last, err = schema.GetMessage(txn, agentID, seq)
		return err
	})
	if err != nil || last == nil {
		return err
	}
	var due sleeptimeDue
	if err := c.invoke(ctx, schema.GroupActor(groupID), opSleeptimeCheck, sleeptimeCheck{agentID, last.Seq, last.ID}, &due); err != nil || !due.Run {
		return err
	}
	var transcript string
	err = c.read(ctx, func(txn kv.Txn) (err error) {
		transcript, err = transcriptOf(txn, agentID, due.From, due.To)
		return err
	})
	if err != nil {
		return err
	}
	text, _ := json.Marshal(sleeptimeReminder + transcript)
	for _, id := range due.AgentIDs {
		req := letta.MessageRequest{Messages: []letta.MessageCreate{{Type: "message", Role: schema.RoleUser, Content: text}}, Background: true}
		if _, err := c.turns.Start(ctx, loop.Request{AgentID: id, Message: req}); err != nil {
			return err
		}
	}
	return nil
}

// transcriptOf renders an agent's messages from+1..to as the lines a
// sleep-time agent reads: who said what.
func transcriptOf(txn kv.Txn, agentID string, from, to uint64) (string, error) {
	r := kv.Range{Start: schema.MessageKey(agentID, from+1), End: schema.MessageKey(agentID, to+1)}
	var lines []string
	err := kv.ScanEach(txn, r, false, func(p kv.KeyValue) (bool, error) {
		m, err := schema.DecodeMessage(p.Value)
		if err != nil {
			return false, err
		}
		for _, lm := range message.Render(m) {
			switch v := lm.(type) {
			case *letta.UserMessage:
				lines = append(lines, "user: "+m.Text)
			case *letta.AssistantMessage:
				lines = append(lines, "assistant: "+v.Content)
			}
		}
		return true, nil
	})
	return strings.Join(lines, "\n"), err
}
