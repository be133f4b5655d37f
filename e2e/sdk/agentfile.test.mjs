// Export an agent (blocks, a custom tool, history) from one server with
// Letta's official TypeScript SDK and import it into a fresh server; the
// imported agent has the same memory, tools and history and takes a turn
// that sees them. Run by sdk_groups_test.go with KELPIE_BASE_URL,
// KELPIE_SECOND_URL and LLM_CONTROL_URL set.
import { test } from "node:test";
import assert from "node:assert/strict";
import Letta, { toFile } from "@letta-ai/letta-client";
import { script, requests, pending, textOf } from "./llm.mjs";

const opts = { apiKey: "unused", maxRetries: 0, timeout: 60_000 };
const source = new Letta({ baseURL: process.env.KELPIE_BASE_URL, ...opts });
const target = new Letta({ baseURL: process.env.KELPIE_SECOND_URL, ...opts });
const shapes = (msgs) => msgs.map((m) => `${m.message_type}:${textOf(m.content ?? m.reasoning ?? m.tool_return ?? m.tool_call?.name)}`);

test("an exported agent imports into a fresh server whole", async () => {
  const tool = await source.tools.create({
    source_code: "def roll(sides: int) -> int:\n    \"\"\"Roll a die.\"\"\"\n    return sides\n",
    json_schema: { name: "roll", description: "Roll a die.", parameters: { type: "object", properties: { sides: { type: "integer" } }, required: ["sides"] } },
  });
  const agent = await source.agents.create({
    name: "traveller",
    model: "openai/gpt-4o-mini",
    tool_ids: [tool.id],
    memory_blocks: [
      { label: "human", value: "Name: Ada" },
      { label: "persona", value: "I pack light.", limit: 500 },
    ],
  });
  await script({ text: "Welcome aboard, Ada." });
  await source.agents.messages.create(agent.id, { messages: [{ role: "user", content: "Hello, I am Ada." }] });

  const file = await source.agents.exportFile(agent.id);
  const af = typeof file === "string" ? JSON.parse(file) : file;
  assert.equal(af.agents.length, 1);
  assert.deepEqual(af.blocks.map((b) => b.label).sort(), ["human", "persona"]);
  assert.ok(af.tools.some((t) => t.name === "roll" && t.source_code.includes("def roll")), "the custom tool travels with its source");

  const imported = await target.agents.importFile({ file: await toFile(Buffer.from(JSON.stringify(af)), "traveller.af") });
  assert.equal(imported.agent_ids.length, 1);
  const id = imported.agent_ids[0];
  const copy = await target.agents.retrieve(id, { include: ["agent.blocks", "agent.tools"] });
  assert.equal(copy.name, "traveller_copy");
  assert.equal(copy.blocks.find((b) => b.label === "human").value, "Name: Ada");
  assert.equal(copy.blocks.find((b) => b.label === "persona").limit, 500);
  assert.ok(copy.tools.some((t) => t.name === "roll"), `imported tools: ${copy.tools.map((t) => t.name)}`);
  assert.ok((await target.tools.list({ name: "roll" })).items.length === 1, "the target server has the custom tool");

  const orig = (await source.agents.messages.list(agent.id, { order: "asc" })).items;
  const got = (await target.agents.messages.list(id, { order: "asc" })).items;
  assert.deepEqual(shapes(got).slice(1), shapes(orig).slice(1), "the same history after the system message");

  // The imported agent answers with its history in the prompt.
  await script({ text: "Yes, you are Ada." });
  const res = await target.agents.messages.create(id, { messages: [{ role: "user", content: "Do you remember me?" }] });
  assert.equal(res.stop_reason.stop_reason, "end_turn");
  const reqs = await requests();
  const last = reqs[reqs.length - 1];
  assert.ok(last.messages.some((m) => m.role === "user" && textOf(m.content).includes("Hello, I am Ada.")), "the imported history reached the model");
  assert.ok(last.system.includes("Name: Ada"), "the imported memory is in the prompt");
  assert.equal(await pending(), 0);
});

test("an agent's MCP servers travel with it, without their secrets", async () => {
  const remote = await source.mcpServers.create({
    server_name: "e2e-numbers",
    config: { mcp_server_type: "streamable_http", server_url: process.env.MCP_HTTP_URL, auth_header: "Authorization", auth_token: "Bearer e2e-token" },
  });
  const add = (await source.mcpServers.tools.list(remote.id)).find((t) => t.name === "add");
  const agent = await source.agents.create({ name: "counter", model: "openai/gpt-4o-mini", include_base_tools: false, tool_ids: [add.id] });

  const file = await source.agents.exportFile(agent.id);
  const af = typeof file === "string" ? JSON.parse(file) : file;
  assert.deepEqual(af.mcp_servers.map((s) => [s.server_name, s.server_type, s.server_url]), [["e2e-numbers", "streamable_http", process.env.MCP_HTTP_URL]]);
  assert.ok(!JSON.stringify(af).includes("e2e-token"), "the export carries no token");
  assert.equal(af.tools.find((t) => t.name === "add").metadata_.mcp.server_name, "e2e-numbers");

  const imported = await target.agents.importFile({ file: await toFile(Buffer.from(JSON.stringify(af)), "counter.af") });
  const servers = await target.mcpServers.list();
  const copy = servers.find((s) => s.server_name === "e2e-numbers");
  assert.ok(copy, `servers after the import: ${JSON.stringify(servers)}`);
  const got = await target.agents.retrieve(imported.agent_ids[0], { include: ["agent.tools"] });
  const tool = got.tools.find((t) => t.name === "add");
  assert.equal(tool.tool_type, "external_mcp");
  // The token is entered again on the target; then the tool runs there.
  await target.mcpServers.update(copy.id, { config: { mcp_server_type: "streamable_http", auth_header: "Authorization", auth_token: "Bearer e2e-token" } });
  const run = await target.mcpServers.tools.run(tool.id, { mcp_server_id: copy.id, args: { a: 20, b: 22 } });
  assert.equal(run.status, "success", JSON.stringify(run));
  assert.equal(run.func_return, "42");
});
