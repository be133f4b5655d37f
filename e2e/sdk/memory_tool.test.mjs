// The model edits its own memory: a scripted memory_replace tool call on the
// human block, then a final answer. Checks the turn's messages and the block
// through Letta's official TypeScript SDK. Run by sdk_test.go with
// KELPIE_BASE_URL and LLM_CONTROL_URL set.
import { test } from "node:test";
import assert from "node:assert/strict";
import Letta from "@letta-ai/letta-client";
import { script, requests, pending, textOf } from "./llm.mjs";

const client = new Letta({ baseURL: process.env.KELPIE_BASE_URL, apiKey: "unused", maxRetries: 0, timeout: 60_000 });
const byType = (msgs, type) => msgs.filter((m) => m.message_type === type);

test("a memory_replace tool call edits the human block", async () => {
  const agent = await client.agents.create({
    name: "memory-agent",
    model: "openai/gpt-4o-mini",
    memory_blocks: [
      { label: "human", value: "Name: Ada Lovelace\nLikes: tea" },
      { label: "persona", value: "I keep my notes accurate." },
    ],
  });

  await script(
    {
      tool_calls: [
        {
          id: "call_memory_1",
          name: "memory_replace",
          arguments: { label: "human", old_str: "Name: Ada Lovelace", new_str: "Name: Grace Hopper" },
        },
      ],
    },
    { text: "Got it, Grace." },
  );
  const res = await client.agents.messages.create(agent.id, {
    messages: [{ role: "user", content: "Actually my name is Grace Hopper." }],
  });
  const types = res.messages.map((m) => m.message_type);

  const calls = byType(res.messages, "tool_call_message");
  assert.equal(calls.length, 1, `one tool_call_message in ${JSON.stringify(types)}`);
  const call = calls[0].tool_call ?? calls[0].tool_calls?.[0];
  assert.equal(call.name, "memory_replace");
  assert.equal(call.tool_call_id, "call_memory_1");
  assert.deepEqual(JSON.parse(call.arguments), { label: "human", old_str: "Name: Ada Lovelace", new_str: "Name: Grace Hopper" });

  const returns = byType(res.messages, "tool_return_message");
  assert.equal(returns.length, 1, `one tool_return_message in ${JSON.stringify(types)}`);
  assert.equal(returns[0].status, "success", `tool return: ${JSON.stringify(returns[0])}`);
  assert.equal(returns[0].tool_call_id, "call_memory_1");

  const assistant = byType(res.messages, "assistant_message");
  assert.deepEqual(assistant.map((m) => textOf(m.content)), ["Got it, Grace."]);
  assert.ok(types.indexOf("tool_call_message") < types.indexOf("tool_return_message"), `call before return: ${JSON.stringify(types)}`);
  assert.ok(types.indexOf("tool_return_message") < types.indexOf("assistant_message"), `return before answer: ${JSON.stringify(types)}`);
  assert.equal(res.stop_reason.stop_reason, "end_turn");
  assert.equal(res.usage.step_count, 2);

  // The block changed, as the SDK sees it.
  const human = await client.agents.blocks.retrieve("human", { agent_id: agent.id });
  assert.equal(human.value, "Name: Grace Hopper\nLikes: tea");
  const got = await client.agents.retrieve(agent.id, { include: ["agent.blocks"] });
  assert.equal(got.blocks.find((b) => b.label === "human").value, "Name: Grace Hopper\nLikes: tea");

  // The model was offered the tool, and the step after the call saw the result.
  const reqs = await requests();
  assert.equal(reqs.length, 2, `two model requests, got ${reqs.length}`);
  assert.ok(reqs[0].tools.includes("memory_replace"), `memory_replace offered: ${JSON.stringify(reqs[0].tools)}`);
  const toolMsg = reqs[1].messages.find((m) => m.role === "tool" && m.tool_call_id === "call_memory_1");
  assert.ok(toolMsg, `the second request answers the call: ${JSON.stringify(reqs[1].messages)}`);
  assert.ok(reqs[1].system.includes("Name: Grace Hopper"), `the next step's prompt shows the edit:\n${reqs[1].system}`);
  assert.equal(await pending(), 0);

  // A failing edit is reported to the model as an error, and the block is unchanged.
  await script(
    { tool_calls: [{ id: "call_memory_2", name: "memory_replace", arguments: { label: "human", old_str: "not in the block", new_str: "x" } }] },
    { text: "That did not work." },
  );
  const bad = await client.agents.messages.create(agent.id, { messages: [{ role: "user", content: "try again" }] });
  const badReturn = byType(bad.messages, "tool_return_message");
  assert.equal(badReturn.length, 1, `one tool_return_message in ${JSON.stringify(bad.messages.map((m) => m.message_type))}`);
  assert.equal(badReturn[0].status, "error");
  assert.equal(bad.stop_reason.stop_reason, "end_turn");
  assert.equal((await client.agents.blocks.retrieve("human", { agent_id: agent.id })).value, "Name: Grace Hopper\nLikes: tea");

  await client.agents.delete(agent.id);
});
