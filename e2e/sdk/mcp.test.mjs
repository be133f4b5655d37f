// MCP servers, as Letta users register them with the SDK: the tests' Go MCP
// server over stdio (MCP_COMMAND, MCP_ARGS, MCP_ENV) and over streamable
// HTTP with a bearer token (MCP_HTTP_URL). One of its tools is attached to
// an agent and called by the model in a turn; another is run directly.
// Run by sdk_mcp_test.go with KELPIE_BASE_URL and LLM_CONTROL_URL set.
import { test } from "node:test";
import assert from "node:assert/strict";
import Letta from "@letta-ai/letta-client";
import { script, requests, pending, textOf } from "./llm.mjs";

const client = new Letta({ baseURL: process.env.KELPIE_BASE_URL, apiKey: "unused", maxRetries: 0, timeout: 60_000 });
const byType = (msgs, type) => msgs.filter((m) => m.message_type === type);

test("an MCP tool is registered, attached and called in a turn", async () => {
  const local = await client.mcpServers.create({
    server_name: "e2e-local",
    config: {
      mcp_server_type: "stdio",
      command: process.env.MCP_COMMAND,
      args: JSON.parse(process.env.MCP_ARGS),
      env: JSON.parse(process.env.MCP_ENV),
    },
  });
  assert.equal(local.server_name, "e2e-local");
  assert.equal(local.mcp_server_type, "stdio");
  assert.equal(local.command, process.env.MCP_COMMAND);
  assert.deepEqual((await client.mcpServers.retrieve(local.id)).args, JSON.parse(process.env.MCP_ARGS));

  const tools = await client.mcpServers.tools.list(local.id);
  const add = tools.find((t) => t.name === "add");
  assert.ok(add, `add among ${JSON.stringify(tools.map((t) => t.name))}`);
  assert.equal(add.tool_type, "external_mcp");
  assert.equal((await client.mcpServers.tools.retrieve(add.id, { mcp_server_id: local.id })).id, add.id);

  const agent = await client.agents.create({ name: "mcp-agent", model: "openai/gpt-4o-mini", include_base_tools: false, tool_ids: [add.id] });
  await script(
    { tool_calls: [{ id: "call_add_1", name: "add", arguments: { a: 20, b: 22 } }] },
    { text: "It is 42." },
  );
  const res = await client.agents.messages.create(agent.id, { messages: [{ role: "user", content: "What is 20 + 22?" }] });
  const returns = byType(res.messages, "tool_return_message");
  assert.equal(returns.length, 1, JSON.stringify(res.messages));
  assert.equal(returns[0].status, "success");
  assert.equal(returns[0].tool_return, "42");
  assert.equal(res.stop_reason.stop_reason, "end_turn");
  const reqs = await requests();
  const toolMsg = reqs[1].messages.find((m) => m.role === "tool" && m.tool_call_id === "call_add_1");
  assert.ok(toolMsg, `the second request answers the call: ${JSON.stringify(reqs[1].messages)}`);
  assert.equal(textOf(toolMsg.content), "42");
  assert.equal(await pending(), 0);

  const echo = tools.find((t) => t.name === "echo");
  const run = await client.mcpServers.tools.run(echo.id, { mcp_server_id: local.id, args: { message: "hello" } });
  assert.equal(run.status, "success");
  assert.equal(run.func_return, "hello");

  await client.mcpServers.delete(local.id);
  await assert.rejects(client.mcpServers.retrieve(local.id), (err) => err.status === 404);
});

test("an HTTP server's token is used, never shown", async () => {
  const remote = await client.mcpServers.create({
    server_name: "e2e-remote",
    config: { mcp_server_type: "streamable_http", server_url: process.env.MCP_HTTP_URL, auth_header: "Authorization", auth_token: "Bearer e2e-token" },
  });
  assert.equal(remote.auth_header, "Authorization");
  assert.ok(!JSON.stringify(remote).includes("e2e-token"), JSON.stringify(remote));
  assert.ok((await client.mcpServers.tools.list(remote.id)).some((t) => t.name === "echo"));
  const listed = await client.mcpServers.list();
  assert.deepEqual(listed.map((s) => s.server_name), ["e2e-remote"]);
  const updated = await client.mcpServers.update(remote.id, { server_name: "e2e-renamed", config: { mcp_server_type: "streamable_http", server_url: process.env.MCP_HTTP_URL } });
  assert.equal(updated.server_name, "e2e-renamed");
  const refreshed = await client.mcpServers.refresh(remote.id);
  assert.deepEqual(refreshed, { deleted: [], updated: [], added: [] });
  await client.mcpServers.delete(remote.id);
});
