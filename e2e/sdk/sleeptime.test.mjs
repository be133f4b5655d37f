// A sleep-time agent edits memory after a turn: an agent created with
// enable_sleeptime gets a sleep-time agent and group; after the main
// agent's turn the sleep-time agent (scripted through the model double)
// calls memory_insert on the shared human block. Run by
// sdk_groups_test.go with KELPIE_BASE_URL and LLM_CONTROL_URL set.
import { test } from "node:test";
import assert from "node:assert/strict";
import Letta from "@letta-ai/letta-client";
import { script, requests, pending, textOf } from "./llm.mjs";

const base = process.env.KELPIE_BASE_URL;
const client = new Letta({ baseURL: base, apiKey: "unused", maxRetries: 0, timeout: 60_000 });

test("the sleep-time agent edits the main agent's memory after a turn", async () => {
  const agent = await client.agents.create({
    name: "dreamer",
    model: "openai/gpt-4o-mini",
    enable_sleeptime: true,
    memory_blocks: [{ label: "human", value: "Name: Ada" }],
  });
  const group = agent.multi_agent_group;
  assert.ok(group, "enable_sleeptime made a group");
  assert.equal(group.manager_type, "sleeptime");
  assert.equal(group.manager_agent_id, agent.id);
  assert.equal(group.sleeptime_agent_frequency, 5);
  const sleeper = await client.agents.retrieve(group.agent_ids[0], { include: ["agent.blocks"] });
  assert.equal(sleeper.agent_type, "sleeptime_agent");
  assert.ok(sleeper.blocks.some((b) => b.label === "human"), "the sleep-time agent shares the human block");

  // Every turn, for the test (the SDK has no groups resource: plain HTTP).
  const res = await fetch(`${base}/v1/groups/${group.id}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ manager_config: { manager_type: "sleeptime", sleeptime_agent_frequency: 1 } }),
  });
  assert.equal(res.status, 200, await res.text());

  await script(
    { text: "Noted, green tea it is." },
    { tool_calls: [{ id: "call_sleep_1", name: "memory_insert", arguments: { label: "human", new_str: "Drinks green tea." } }] },
    { text: "Memory updated." },
  );
  const turn = await client.agents.messages.create(agent.id, { messages: [{ role: "user", content: "I only drink green tea." }] });
  assert.deepEqual(turn.messages.filter((m) => m.message_type === "assistant_message").map((m) => textOf(m.content)), ["Noted, green tea it is."]);

  let human = "";
  for (let i = 0; i < 200 && !human.includes("Drinks green tea."); i++) {
    await new Promise((r) => setTimeout(r, 50));
    human = (await client.agents.blocks.retrieve("human", { agent_id: agent.id })).value;
  }
  assert.ok(human.includes("Drinks green tea."), `the main agent's human block: ${human}`);

  const runs = (await client.runs.list({ agent_id: sleeper.id })).items;
  assert.equal(runs.length, 1, "one sleep-time run");
  const reqs = await requests();
  const transcript = reqs[1].messages.map((m) => textOf(m.content)).join("\n");
  assert.ok(transcript.includes("user: I only drink green tea."), `the sleep-time agent read the turn:\n${transcript}`);
  assert.ok(transcript.includes("assistant: Noted, green tea it is."));
  for (let i = 0; i < 200 && (await pending()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await pending(), 0);
});
