// A custom tool, as Letta users make one: created from Python source (its
// schema derived from the docstring and type hints), attached to an agent,
// called by the model in a turn (run in Kelpie's bubblewrap sandbox), its
// result sent back to the model. Then the SDK's auto-pagination walks the
// tools listings to their end. Run by sdk_tools_test.go with
// KELPIE_BASE_URL and LLM_CONTROL_URL set.
import { test } from "node:test";
import assert from "node:assert/strict";
import Letta from "@letta-ai/letta-client";
import { script, requests, pending, textOf } from "./llm.mjs";

const client = new Letta({ baseURL: process.env.KELPIE_BASE_URL, apiKey: "unused", maxRetries: 0, timeout: 60_000 });
const byType = (msgs, type) => msgs.filter((m) => m.message_type === type);

const source = `def count_vowels(text: str, include_y: bool = False) -> int:
    """Count the vowels in a text.

    Args:
        text (str): The text to look at.
        include_y (bool): Whether y counts as a vowel.

    Returns:
        int: How many vowels the text has.
    """
    vowels = "aeiouy" if include_y else "aeiou"
    return sum(1 for c in text.lower() if c in vowels)
`;

test("a custom tool made from Python source runs in a turn", async () => {
  const tool = await client.tools.create({ source_code: source, tags: ["e2e"] });
  assert.equal(tool.name, "count_vowels");
  assert.equal(tool.tool_type, "custom");
  assert.deepEqual(tool.json_schema, {
    name: "count_vowels",
    description: "Count the vowels in a text.",
    parameters: {
      type: "object",
      properties: {
        text: { type: "string", description: "The text to look at." },
        include_y: { type: "boolean", description: "Whether y counts as a vowel." },
      },
      required: ["text"],
    },
  });
  assert.equal((await client.tools.retrieve(tool.id)).source_code, source);

  const agent = await client.agents.create({ name: "tool-agent", model: "openai/gpt-4o-mini", include_base_tools: false });
  await client.agents.tools.attach(tool.id, { agent_id: agent.id });
  const attached = await client.agents.retrieve(agent.id, { include: ["agent.tools"] });
  assert.deepEqual(attached.tools.map((t) => t.name), ["count_vowels"]);

  await script(
    { tool_calls: [{ id: "call_vowels_1", name: "count_vowels", arguments: { text: "Kelpie runs tools" } }] },
    { text: "It has 6 vowels." },
  );
  const res = await client.agents.messages.create(agent.id, {
    messages: [{ role: "user", content: "How many vowels in 'Kelpie runs tools'?" }],
  });
  const types = res.messages.map((m) => m.message_type);
  const returns = byType(res.messages, "tool_return_message");
  assert.equal(returns.length, 1, `one tool_return_message in ${JSON.stringify(types)}`);
  assert.equal(returns[0].status, "success", JSON.stringify(returns[0]));
  assert.equal(returns[0].tool_return, "6");
  assert.equal(returns[0].tool_call_id, "call_vowels_1");
  assert.deepEqual(byType(res.messages, "assistant_message").map((m) => textOf(m.content)), ["It has 6 vowels."]);
  assert.equal(res.stop_reason.stop_reason, "end_turn");

  // The model was offered the derived schema, and its next step got the result.
  const reqs = await requests();
  assert.equal(reqs.length, 2, `two model requests, got ${reqs.length}`);
  assert.ok(reqs[0].tools.includes("count_vowels"), `count_vowels offered: ${JSON.stringify(reqs[0].tools)}`);
  const toolMsg = reqs[1].messages.find((m) => m.role === "tool" && m.tool_call_id === "call_vowels_1");
  assert.ok(toolMsg, `the second request answers the call: ${JSON.stringify(reqs[1].messages)}`);
  assert.equal(textOf(toolMsg.content), "6");
  assert.equal(await pending(), 0);
});

test("auto-pagination walks the tools listings to their end", async () => {
  for (let i = 0; i < 3; i++) {
    await client.tools.upsert({ source_code: `def page_tool_${i}():\n    """Tool ${i}."""\n    return ${i}\n` });
  }
  const total = await client.get("/v1/tools/count");
  const seen = [];
  for await (const t of client.tools.list({ limit: 2 })) {
    seen.push(t.id);
    assert.ok(seen.length <= total, `paging did not stop after ${total} tools`);
  }
  assert.equal(seen.length, total);
  assert.equal(new Set(seen).size, total, "no tool listed twice");

  const agent = await client.agents.create({ name: "many-tools", model: "openai/gpt-4o-mini", tools: ["page_tool_0", "page_tool_1", "page_tool_2"] });
  const agentTools = [];
  for await (const t of client.agents.tools.list(agent.id, { limit: 2 })) agentTools.push(t.name);
  assert.ok(["page_tool_0", "page_tool_1", "page_tool_2"].every((n) => agentTools.includes(n)), JSON.stringify(agentTools));
  assert.equal(new Set(agentTools).size, agentTools.length);
});
