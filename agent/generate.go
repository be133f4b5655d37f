package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/schema"
)

// Direct generation (Letta's /generate): one model call with an agent's
// model, outside the agent's actor, reading only the agent's record and
// storing nothing.

// MaxGeneratePromptChars bounds a generate request's prompt and system
// prompt, each.
const MaxGeneratePromptChars = 1_000_000

// defaultGenerateSystem is the system message of a generate request that
// gives none (Letta's: some providers need one).
const defaultGenerateSystem = "You are a helpful assistant."

// structuredOutputTool is the tool a generate request with a
// response_schema makes the model call (Letta's name and description).
const structuredOutputTool = "structured_output"

// Generate asks the agent's model (or req.OverrideModel) to answer a
// prompt, as Letta's generate_completion does: a system message and the
// prompt, no memory, no tools unless a response schema asks for
// structured output, nothing stored.
func (s *Agents) Generate(ctx context.Context, agentID string, req letta.GenerateRequest) (*letta.GenerateResponse, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if req.Prompt == nil || strings.TrimSpace(*req.Prompt) == "" {
		return nil, letta.Invalidf("prompt cannot be empty or whitespace-only")
	}
	system := defaultGenerateSystem
	if req.SystemPrompt != nil && *req.SystemPrompt != "" {
		system = *req.SystemPrompt
	}
	for field, text := range map[string]string{"prompt": *req.Prompt, "system_prompt": system} {
		if err := letta.CheckChars(field, text, MaxGeneratePromptChars); err != nil {
			return nil, err
		}
	}
	var a *schema.Agent
	if err := s.c.read(ctx, func(txn kv.Txn) (err error) {
		a, err = schema.GetAgent(txn, agentID)
		return err
	}); err != nil {
		return nil, err
	}
	if s.c.llm == nil {
		return nil, &letta.Error{Kind: letta.KindUnavailable, Message: "No LLM provider is configured; configure one and restart kelpie."}
	}
	handle := loop.HandleOf(a)
	if req.OverrideModel != nil && *req.OverrideModel != "" {
		handle = *req.OverrideModel
	}
	p, model, err := s.c.llm.Resolve(handle)
	if err != nil {
		if handle != loop.HandleOf(a) {
			return nil, letta.NotFoundf("Model '%s' not found or not accessible", handle)
		}
		return nil, &letta.Error{Kind: letta.KindUnavailable, Message: fmt.Sprintf("agent %s's model %q has no configured provider: %v", agentID, handle, err)}
	}
	call := llm.Request{Model: model, Messages: []llm.Message{{Role: llm.RoleSystem, Content: system}, {Role: llm.RoleUser, Content: *req.Prompt}}}
	if req.ResponseSchema != nil {
		tool, err := structuredOutput(req.ResponseSchema)
		if err != nil {
			return nil, err
		}
		call.Tools, call.ToolChoice = []llm.Tool{tool}, structuredOutputTool
	}
	resp, err := p.Complete(ctx, call, nil)
	if err != nil {
		return nil, &letta.Error{Kind: letta.KindUpstream, Message: "LLM provider error: " + err.Error()}
	}
	content := resp.Content
	if req.ResponseSchema != nil && len(resp.ToolCalls) > 0 {
		content = resp.ToolCalls[0].Arguments
	}
	usage := schema.Usage{PromptTokens: resp.Usage.PromptTokens, CompletionTokens: resp.Usage.CompletionTokens}.Statistics()
	usage.RunIDs = []string{}
	return &letta.GenerateResponse{Content: content, Model: model, Usage: usage}, nil
}

// structuredOutput is the tool whose parameters are a response schema's
// properties, all required unless the schema says which are.
func structuredOutput(schemaObj map[string]any) (llm.Tool, error) {
	props, _ := schemaObj["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	required, ok := schemaObj["required"]
	if !ok {
		names := make([]string, 0, len(props))
		for name := range props {
			names = append(names, name)
		}
		slices.Sort(names)
		required = names
	}
	params, err := json.Marshal(map[string]any{"type": "object", "properties": props, "required": required})
	if err != nil {
		return llm.Tool{}, letta.Invalidf("response_schema: %v", err)
	}
	return llm.Tool{Name: structuredOutputTool, Description: "Returns a structured response matching the requested schema.", Parameters: params}, nil
}
