// Drives Kelpie with Letta's official TypeScript SDK: agents and memory
// blocks. Run by e2e_test.go with KELPIE_BASE_URL set.
import { test } from "node:test";
import assert from "node:assert/strict";
import Letta from "@letta-ai/letta-client";

const client = new Letta({ baseURL: process.env.KELPIE_BASE_URL, apiKey: "unused", maxRetries: 0 });

test("agent lifecycle with memory blocks", async () => {
  const agent = await client.agents.create({
    name: "sdk-agent",
    model: "openai/gpt-4o-mini",
    embedding: "openai/text-embedding-3-small",
    memory_blocks: [
      { label: "human", value: "Name: Ada" },
      { label: "persona", value: "A careful assistant." },
    ],
    tags: ["sdk", "e2e"],
    metadata: { suite: "sdk" },
  });
  assert.match(agent.id, /^agent-[0-9a-f-]{36}$/);
  assert.equal(agent.name, "sdk-agent");
  assert.equal(agent.llm_config.model, "gpt-4o-mini");
  assert.deepEqual(agent.tags.sort(), ["e2e", "sdk"]);

  const got = await client.agents.retrieve(agent.id, { include: ["agent.blocks"] });
  assert.equal(got.id, agent.id);
  assert.deepEqual(got.blocks.map((b) => b.label).sort(), ["human", "persona"]);

  const renamed = await client.agents.update(agent.id, { name: "sdk-agent-2", description: "renamed" });
  assert.equal(renamed.name, "sdk-agent-2");
  assert.equal(renamed.description, "renamed");

  const block = await client.agents.blocks.update("human", { agent_id: agent.id, value: "Name: Ada Lovelace" });
  assert.equal(block.value, "Name: Ada Lovelace");
  const again = await client.agents.blocks.retrieve("human", { agent_id: agent.id });
  assert.equal(again.value, "Name: Ada Lovelace");

  const labels = [];
  for await (const b of client.agents.blocks.list(agent.id)) labels.push(b.label);
  assert.deepEqual(labels.sort(), ["human", "persona"]);

  await client.agents.delete(agent.id);
  await assert.rejects(client.agents.retrieve(agent.id), (err) => err.status === 404);
});

test("listing auto-paginates over more than one page", async () => {
  const tag = `page-${Date.now()}`;
  const ids = [];
  for (let i = 0; i < 7; i++) {
    const a = await client.agents.create({ name: `page-${i}`, model: "openai/gpt-4o-mini", tags: [tag] });
    ids.push(a.id);
  }
  const seen = [];
  for await (const a of client.agents.list({ tags: [tag], limit: 3 })) seen.push(a.id);
  assert.equal(seen.length, ids.length, "every agent listed once");
  assert.deepEqual([...seen].sort(), [...ids].sort());
  assert.deepEqual(seen, [...ids].reverse(), "newest first by default");
  for (const id of ids) await client.agents.delete(id);
});

test("a shared block edit is seen by every agent it is attached to", async () => {
  const shared = await client.blocks.create({ label: "team", value: "v1" });
  const a = await client.agents.create({ name: "a", model: "openai/gpt-4o-mini", block_ids: [shared.id] });
  const b = await client.agents.create({ name: "b", model: "openai/gpt-4o-mini" });
  await client.agents.blocks.attach(shared.id, { agent_id: b.id });

  await client.blocks.update(shared.id, { value: "v2" });
  for (const id of [a.id, b.id]) {
    const blk = await client.agents.blocks.retrieve("team", { agent_id: id });
    assert.equal(blk.value, "v2");
  }
  const holders = [];
  for await (const x of client.blocks.agents.list(shared.id)) holders.push(x.id);
  assert.deepEqual(holders.sort(), [a.id, b.id].sort());

  await client.agents.blocks.detach(shared.id, { agent_id: b.id });
  await assert.rejects(client.agents.blocks.retrieve("team", { agent_id: b.id }), (err) => err.status === 404);
  await client.blocks.delete(shared.id);
  await assert.rejects(client.agents.blocks.retrieve("team", { agent_id: a.id }), (err) => err.status === 404);
});

test("bad input is a clear 4xx", async () => {
  await assert.rejects(client.agents.retrieve("agent-not-a-uuid"), (err) => err.status === 422);
  await assert.rejects(
    client.agents.retrieve("agent-00000000-0000-4000-8000-000000000000"),
    (err) => err.status === 404,
  );
  await assert.rejects(
    client.blocks.create({ label: "tiny", value: "far too long", limit: 3 }),
    (err) => err.status >= 400 && err.status < 500,
  );
});
