package api

import (
	"net/http"

	"github.com/kelpie/kelpie/agent"
)

// routes registers every route Kelpie serves, by resource. Each is also
// served under /latest and with a trailing slash (see normalize).
func (s *server) routes() {
	s.handle("GET", "/v1/health", s.health)

	// Cluster membership (cluster.go).
	s.handle("GET", "/v1/cluster", s.clusterMembers)

	// Agents and the blocks attached to them (agents.go).
	s.handle("POST", "/v1/agents", s.createAgent)
	s.handle("GET", "/v1/agents", s.listAgents)
	s.handle("GET", "/v1/agents/count", s.countAgents)
	s.handle("GET", "/v1/agents/{agent_id}", s.getAgent)
	s.handle("PATCH", "/v1/agents/{agent_id}", s.updateAgent)
	s.handle("DELETE", "/v1/agents/{agent_id}", s.deleteAgent)
	s.handle("GET", "/v1/agents/{agent_id}/core-memory/blocks", s.listAgentBlocks)
	s.handle("GET", "/v1/agents/{agent_id}/core-memory/blocks/{block_label}", s.getAgentBlock)
	s.handle("PATCH", "/v1/agents/{agent_id}/core-memory/blocks/{block_label}", s.updateAgentBlock)
	s.handle("PATCH", "/v1/agents/{agent_id}/core-memory/blocks/attach/{block_id}", s.attachBlock)
	s.handle("PATCH", "/v1/agents/{agent_id}/core-memory/blocks/detach/{block_id}", s.detachBlock)

	// Blocks (blocks.go).
	s.handle("POST", "/v1/blocks", s.createBlock)
	s.handle("GET", "/v1/blocks", s.listBlocks)
	s.handle("GET", "/v1/blocks/count", s.countBlocks)
	s.handle("GET", "/v1/blocks/{block_id}", s.getBlock)
	s.handle("PATCH", "/v1/blocks/{block_id}", s.updateBlock)
	s.handle("DELETE", "/v1/blocks/{block_id}", s.deleteBlock)
	s.handle("GET", "/v1/blocks/{block_id}/agents", s.linkedAgents("block_id", func(v *agent.Service) agentLister { return v.Blocks.Agents }))

	// Messages: turns and history (messages.go).
	s.handle("POST", "/v1/agents/{agent_id}/messages", s.sendAgentMessage)
	s.handle("POST", "/v1/agents/{agent_id}/messages/stream", s.streamAgentMessage)
	s.handle("GET", "/v1/agents/{agent_id}/messages", s.listAgentMessages)
	s.handle("POST", "/v1/agents/{agent_id}/messages/cancel", s.cancelAgentMessages)
	s.handle("GET", "/v1/messages/{message_id}", s.getMessage)

	// The context window (context.go).
	s.handle("POST", "/v1/agents/{agent_id}/recompile", s.recompileAgent)
	s.handle("GET", "/v1/agents/{agent_id}/context", s.agentContext)
	s.handle("PATCH", "/v1/agents/{agent_id}/reset-messages", s.resetMessages)
	s.handle("POST", "/v1/agents/{agent_id}/summarize", s.summarizeAgent)
	s.handle("POST", "/v1/agents/{agent_id}/generate", s.generate)
	s.handle("POST", "/v1/conversations/{conversation_id}/compact", s.compactConversation)
	s.handle("DELETE", "/v1/conversations/{conversation_id}", s.deleteConversation)
	s.handle("POST", "/v1/conversations/{conversation_id}/fork", s.forkConversation)
	s.handle("POST", "/v1/conversations/{conversation_id}/recompile", s.recompileConversation)

	// Archival memory (archival.go).
	s.handle("GET", "/v1/agents/{agent_id}/archival-memory", s.listPassages)
	s.handle("POST", "/v1/agents/{agent_id}/archival-memory", s.createPassage)
	s.handle("GET", "/v1/agents/{agent_id}/archival-memory/search", s.searchPassages)
	s.handle("DELETE", "/v1/agents/{agent_id}/archival-memory/{memory_id}", s.deletePassage)
	// Semantic passage search across agents (passages.go) and shared
	// archives (archives.go).
	s.handle("POST", "/v1/passages/search", s.searchAllPassages)
	s.archiveRoutes()

	// Folders and files, and agents' folders and open files (folders.go).
	s.folderRoutes()

	// Conversations (conversations.go).
	s.handle("POST", "/v1/conversations", s.createConversation)
	s.handle("GET", "/v1/conversations", s.listConversations)
	s.handle("GET", "/v1/conversations/{conversation_id}", s.getConversation)
	s.handle("PATCH", "/v1/conversations/{conversation_id}", s.updateConversation)
	s.handle("GET", "/v1/conversations/{conversation_id}/messages", s.listConversationMessages)
	s.handle("POST", "/v1/conversations/{conversation_id}/messages", s.sendConversationMessage)
	s.handle("POST", "/v1/conversations/{conversation_id}/stream", s.resumeConversationStream)
	s.handle("POST", "/v1/conversations/{conversation_id}/cancel", s.cancelConversation)

	// Runs (runs.go).
	s.handle("GET", "/v1/runs", s.listRuns)
	s.handle("GET", "/v1/runs/{run_id}", s.getRun)
	s.handle("GET", "/v1/runs/{run_id}/messages", s.listRunMessages)
	s.handle("GET", "/v1/runs/{run_id}/usage", s.getRunUsage)
	s.handle("POST", "/v1/runs/{run_id}/stream", s.resumeRunStream)
	s.handle("POST", "/v1/runs/{run_id}/cancel", s.cancelRun)

	// Tools and models (tools.go).
	s.handle("GET", "/v1/tools", s.listTools)
	s.handle("POST", "/v1/tools", s.upsertTool)
	s.handle("PUT", "/v1/tools", s.upsertTool)
	s.handle("GET", "/v1/tools/count", s.countTools)
	s.handle("POST", "/v1/tools/run", s.runToolFromSource)
	s.handle("POST", "/v1/tools/add-base-tools", s.addBaseTools)
	s.handle("GET", "/v1/tools/{tool_id}", s.getTool)
	s.handle("PATCH", "/v1/tools/{tool_id}", s.updateTool)
	s.handle("DELETE", "/v1/tools/{tool_id}", s.deleteTool)
	s.handle("GET", "/v1/agents/{agent_id}/tools", s.listAgentTools)
	// PATCH .../tools/attach/{tool_id} and .../tools/detach/{tool_id}, and
	// POST .../tools/{tool_name}/run, share one pattern: the mux cannot
	// tell "attach" from a tool name.
	s.handle("PATCH", "/v1/agents/{agent_id}/tools/{verb}/{tool_id}", s.attachOrDetachTool)
	s.handle("POST", "/v1/agents/{agent_id}/tools/{verb}/{tool_id}", s.runAgentTool)
	s.handle("GET", "/v1/models", s.listModels)
	s.handle("GET", "/v1/models/embedding", s.listEmbeddingModels)

	// MCP servers (mcp.go): Letta's /v1/mcp-servers, and the older
	// /v1/tools/mcp/servers routes letta-code's /mcp dialog uses.
	s.handle("GET", "/v1/mcp-servers", s.listMCPServers)
	s.handle("POST", "/v1/mcp-servers", s.createMCPServer)
	s.handle("GET", "/v1/mcp-servers/{mcp_server_id}", s.getMCPServer)
	s.handle("PATCH", "/v1/mcp-servers/{mcp_server_id}", s.updateMCPServer)
	s.handle("DELETE", "/v1/mcp-servers/{mcp_server_id}", s.deleteMCPServer)
	s.handle("GET", "/v1/mcp-servers/{mcp_server_id}/tools", s.listMCPServerTools)
	s.handle("GET", "/v1/mcp-servers/{mcp_server_id}/tools/{tool_id}", s.getMCPServerTool)
	s.handle("POST", "/v1/mcp-servers/{mcp_server_id}/tools/{tool_id}/run", s.runMCPServerTool)
	s.handle("PATCH", "/v1/mcp-servers/{mcp_server_id}/refresh", s.refreshMCPServer)
	s.handle("GET", "/v1/tools/mcp/servers", s.legacyListMCPServers)
	s.handle("GET", "/v1/tools/mcp/servers/{mcp_server_name}/tools", s.legacyListMCPTools)
	s.handle("POST", "/v1/tools/mcp/servers/{mcp_server_name}/{mcp_tool_name}", s.legacyAddMCPTool)
	// MCP servers, the older routes' writes (mcp_legacy.go).
	s.handle("PUT", "/v1/tools/mcp/servers", s.legacyPutMCPServer)
	s.handle("PATCH", "/v1/tools/mcp/servers/{mcp_server_name}", s.legacyPatchMCPServer)
	s.handle("DELETE", "/v1/tools/mcp/servers/{mcp_server_name}", s.legacyDeleteMCPServer)

	// Identities and tags (identities.go).
	s.handle("GET", "/v1/identities", s.listIdentities)
	s.handle("POST", "/v1/identities", s.createIdentity)
	s.handle("PUT", "/v1/identities", s.upsertIdentity)
	s.handle("GET", "/v1/identities/count", s.countIdentities)
	s.handle("GET", "/v1/identities/{identity_id}", s.getIdentity)
	s.handle("PATCH", "/v1/identities/{identity_id}", s.updateIdentity)
	s.handle("DELETE", "/v1/identities/{identity_id}", s.deleteIdentity)
	s.handle("PUT", "/v1/identities/{identity_id}/properties", s.setIdentityProperties)
	s.handle("GET", "/v1/identities/{identity_id}/agents", s.linkedAgents("identity_id", func(v *agent.Service) agentLister { return v.Identities.Agents }))
	s.handle("GET", "/v1/identities/{identity_id}/blocks", s.listIdentityBlocks)
	s.handle("PATCH", "/v1/agents/{agent_id}/identities/attach/{identity_id}", s.attachIdentity)
	s.handle("PATCH", "/v1/agents/{agent_id}/identities/detach/{identity_id}", s.detachIdentity)
	s.handle("GET", "/v1/tags", s.listTags)

	// MemFS: an agent's memory as a git repository, served over git's smart
	// HTTP protocol, and the repositories letta-code lists (git.go).
	s.handle("GET", "/v1/agents/{agent_id}/repositories", s.listAgentRepositories)
	s.handle("GET", "/v1/agents/{agent_id}/secrets", s.listAgentSecrets)
	s.handle("GET", "/v1/git/{agent_id}/state.git/info/refs", s.gitInfoRefs)
	s.handle("POST", "/v1/git/{agent_id}/state.git/git-upload-pack", s.gitUploadPack)
	s.handle("POST", "/v1/git/{agent_id}/state.git/git-receive-pack", s.gitReceivePack)
	// Agent files: export and import (agentfile.go).
	s.handle("GET", "/v1/agents/{agent_id}/export", s.exportAgent)
	s.handle("POST", "/v1/agents/{agent_id}/export", s.exportAgentWithSkills)
	s.handle("POST", "/v1/agents/import", s.importAgent)

	// Background runs, their steps, messages across agents (async.go, steps.go).
	s.handle("POST", "/v1/agents/{agent_id}/messages/async", s.sendAgentMessageAsync)
	s.handle("GET", "/v1/steps", s.listSteps)
	s.handle("GET", "/v1/steps/{step_id}", s.getStep)
	s.handle("GET", "/v1/steps/{step_id}/metrics", s.getStepMetrics)
	s.handle("GET", "/v1/steps/{step_id}/messages", s.listStepMessages)
	s.handle("PATCH", "/v1/steps/{step_id}/feedback", s.setStepFeedback)
	s.handle("GET", "/v1/runs/{run_id}/steps", s.listRunSteps)
	s.handle("GET", "/v1/messages", s.listAllMessages)
	s.handle("GET", "/v1/steps/{step_id}/trace", s.getStepTrace)
	s.handle("GET", "/v1/runs/{run_id}/trace", s.getRunTrace)

	// Message batches (batches.go).
	s.batchRoutes()

	// Groups and sleep-time agents (groups.go).
	s.handle("GET", "/v1/groups", s.listGroups)
	s.handle("POST", "/v1/groups", s.createGroup)
	s.handle("GET", "/v1/groups/count", s.countGroups)
	s.handle("GET", "/v1/groups/{group_id}", s.getGroup)
	s.handle("PATCH", "/v1/groups/{group_id}", s.updateGroup)
	s.handle("DELETE", "/v1/groups/{group_id}", s.deleteGroup)
	s.handle("GET", "/v1/groups/{group_id}/messages", s.listGroupMessages)
	s.handle("GET", "/v1/agents/{agent_id}/groups", s.listAgentGroups)

	// Letta Cloud routes clients call on a self-hosted server (selfhosted.go).
	s.selfHostedRoutes()
	// The operator's figures, in Prometheus' format (see package metrics).
	if s.opts.Metrics != nil {
		s.mux.Handle("GET /metrics", s.opts.Metrics)
		s.paths.Handle("/metrics", http.NotFoundHandler())
	}
}
