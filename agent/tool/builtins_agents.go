package tool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/letta"
)

// Agents runs other agents' turns for the multi-agent tools (the agent
// service implements it, outside any agent's actor).
type Agents interface {
	// Message sends text from agent from to agent to and starts its turn; with wait, it waits for the turn to end and returns the texts
	// of its assistant messages. key identifies the message: a second
	// Message with the same key and agent starts no second turn. The
	// turn's context carries ctx's values (the chain of senders, Senders).
	// With noQueue, an agent busy with another turn is refused instead of
	// waited for.
	Message(ctx context.Context, from, to, key, text string, wait, noQueue bool) (replies []string, err error)
	// Tagged lists the ids of the agents that have every tag of all and
	// (when some is not empty) at least one tag of some.
	Tagged(ctx context.Context, all, some []string) ([]string, error)
}

// Limits of the multi-agent tools, so that agents messaging agents cannot
// recurse or fan out without end.
const (
	// MaxAgentChainDepth is how many agents deep a message may travel: a
	// turn started by an agent's message, itself started by an agent's
	// message, ..., at most this many links from the first sender.
	MaxAgentChainDepth = 3
	// MaxTaggedRecipients bounds the agents one
	// send_message_to_agents_matching_tags call messages.
	MaxTaggedRecipients = 8
	// AgentReplyTimeout bounds the wait for one agent's reply.
	AgentReplyTimeout = 5 * time.Minute
	// maxAgentMessageChars bounds a message one agent sends another.
	maxAgentMessageChars = 100_000
)

type sendersKey struct{}

// WithSenders returns ctx recording the chain of agents whose messages led
// to the turn ctx runs (the first sender first).
func WithSenders(ctx context.Context, chain []string) context.Context {
	return context.WithValue(ctx, sendersKey{}, slices.Clip(chain))
}

// Senders returns the chain of agents whose messages led to ctx's turn.
func Senders(ctx context.Context) []string {
	chain, _ := ctx.Value(sendersKey{}).([]string)
	return chain
}

// sendToAgent sends message from c's agent to agent to, refusing what
// could recurse without end or wait for itself: a message to itself, one
// beyond MaxAgentChainDepth, and a wait for an agent that is itself
// waiting on this turn. The message is keyed by the call, so that it is
// sent at most once.
func sendToAgent(ctx context.Context, x *Outside, c Call, to, text string, wait bool) ([]string, error) {
	if x.Agents == nil {
		return nil, Errorf("messaging other agents is not available on this server")
	}
	if err := letta.CheckID("other_agent_id", "agent", to); err != nil {
		return nil, Errorf("%v", err)
	}
	if len(text) > maxAgentMessageChars {
		return nil, Errorf("the message is %d bytes, over the limit of %d", len(text), maxAgentMessageChars)
	}
	chain := Senders(ctx)
	switch {
	case to == c.AgentID:
		return nil, Errorf("an agent cannot send a message to itself")
	case len(chain)+1 > MaxAgentChainDepth:
		return nil, Errorf("this message would travel %d agents deep, over the limit of %d: answer the agent that messaged you instead (%s)", len(chain)+1, MaxAgentChainDepth, strings.Join(chain, " -> "))
	case wait && slices.Contains(chain, to):
		return nil, Errorf("agent %s is waiting for your reply (it sent the message you are answering): it would wait for itself; just reply", to)
	}
	ctx = WithSenders(ctx, append(slices.Clone(chain), c.AgentID))
	if wait {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, AgentReplyTimeout)
		defer cancel()
	}
	key := letta.DerivedID("agentmsg", c.AgentID, c.CallID, to)
	replies, err := x.Agents.Message(ctx, c.AgentID, to, key, text, wait, slices.Contains(chain, to))
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, Errorf("agent %s did not reply within %s", to, AgentReplyTimeout)
		}
		return nil, err
	}
	return replies, nil
}

// replyOf renders an agent's reply as Letta's tool returns it: Python's
// str() of a dict.
func replyOf(to string, replies []string) string {
	if len(replies) == 0 {
		replies = []string{"<no response>"}
	}
	quoted := make([]string, len(replies))
	for i, r := range replies {
		quoted[i] = letta.PyStr(r)
	}
	return fmt.Sprintf("{'agent_id': %s, 'response': [%s]}", letta.PyStr(to), strings.Join(quoted, ", "))
}

// waitedMessage wraps a message for an agent whose reply the sender
// awaits, as Letta wraps it.
func waitedMessage(from, message string) string {
	prefix := fmt.Sprintf("[Incoming message from agent with ID '%s' - your response will be delivered to the sender] ", from)
	if strings.ToLower(message) == message {
		return prefix + message
	}
	return prefix + message + "\n" + strings.ToLower(message)
}

// agentFailure is the outcome of a multi-agent call that failed.
func agentFailure(err error) Outcome { return Failed("%s", errorText(err)) }

// errorText is what the model reads of an error.
func errorText(err error) string {
	var ce *callError
	if errors.As(err, &ce) {
		return ce.msg
	}
	return err.Error()
}

// toAgentArgs are the arguments of the tools that message one agent.
type toAgentArgs struct {
	Message      string `json:"message"`
	OtherAgentID string `json:"other_agent_id"`
}

const toAgentParams = `{"type":"object","properties":{"message":{"type":"string","description":"The content of the message to send to the other agent."},"other_agent_id":{"type":"string","description":"The id of the agent to send it to."}},"required":["message","other_agent_id"]}`

var (
	sendMessageToAgentAndWait = defineOutside("send_message_to_agent_and_wait_for_reply", "letta_multi_agent_core",
		"Sends a message to another agent on this server and waits for its reply. Your identity is included with the message, so no introduction is needed. Use it for two-way communication.",
		toAgentParams,
		func(ctx context.Context, x *Outside, c Call, a toAgentArgs) Outcome {
			replies, err := sendToAgent(ctx, x, c, a.OtherAgentID, waitedMessage(c.AgentID, a.Message), true)
			if err != nil {
				return agentFailure(err)
			}
			return Outcome{Result: replyOf(a.OtherAgentID, replies), OK: true}
		})

	sendMessageToAgentAsync = defineOutside("send_message_to_agent_async", "letta_multi_agent_core",
		"Sends a message to another agent on this server without waiting for a reply. Your identity is included with the message, so no introduction is needed. Use it for notifications and one-way communication.",
		toAgentParams,
		func(ctx context.Context, x *Outside, c Call, a toAgentArgs) Outcome {
			text := fmt.Sprintf("[Incoming message from agent with ID '%s' - this is a one-way notification; if you need to respond, use an agent-to-agent messaging tool if available] %s", c.AgentID, a.Message)
			if _, err := sendToAgent(ctx, x, c, a.OtherAgentID, text, false); err != nil {
				return agentFailure(err)
			}
			return Outcome{Result: "Successfully sent message", OK: true}
		})

	sendMessageToAgentsMatchingTags = defineOutside("send_message_to_agents_matching_tags", "letta_multi_agent_core",
		"Sends a message to every other agent on this server that has all the tags of match_all and at least one of match_some, and waits for their replies. Returns one reply per agent.",
		`{"type":"object","properties":{"message":{"type":"string","description":"The content of the message to send to each matching agent."},"match_all":{"type":"array","items":{"type":"string"},"description":"Tags an agent must all have to receive the message."},"match_some":{"type":"array","items":{"type":"string"},"description":"Tags of which an agent must have at least one to receive the message."}},"required":["message","match_all","match_some"]}`,
		func(ctx context.Context, x *Outside, c Call, a struct {
			Message   string   `json:"message"`
			MatchAll  []string `json:"match_all"`
			MatchSome []string `json:"match_some"`
		}) Outcome {
			if x.Agents == nil {
				return Failed("messaging other agents is not available on this server")
			}
			ids, err := x.Agents.Tagged(ctx, a.MatchAll, a.MatchSome)
			if err != nil {
				return agentFailure(err)
			}
			ids = slices.DeleteFunc(ids, func(id string) bool { return id == c.AgentID })
			if len(ids) > MaxTaggedRecipients {
				return Failed("%d agents match these tags, over the limit of %d for one message: choose tags that match fewer agents", len(ids), MaxTaggedRecipients)
			}
			results := make([]string, 0, len(ids))
			for _, id := range ids {
				replies, err := sendToAgent(ctx, x, c, id, waitedMessage(c.AgentID, a.Message), true)
				if err != nil {
					replies = []string{"<error: " + errorText(err) + ">"}
				}
				results = append(results, replyOf(id, replies))
			}
			return Outcome{Result: "[" + strings.Join(results, ", ") + "]", OK: true}
		})
)
