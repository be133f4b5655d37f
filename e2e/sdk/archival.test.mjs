// Archival memory through Letta's official TypeScript SDK against a Kelpie
// whose embeddings come from the model double (OPENAI_BASE_URL): passages
// keep their embeddings, search finds by meaning, a shared archive attached
// to an agent joins its search, and /v1/passages/search scores hits. Run by
// sdk_test.go with KELPIE_BASE_URL and LLM_CONTROL_URL set.
import { test } from "node:test";
import assert from "node:assert/strict";
import Letta from "@letta-ai/letta-client";
import { script } from "./llm.mjs";

const client = new Letta({ baseURL: process.env.KELPIE_BASE_URL, apiKey: "unused", maxRetries: 0, timeout: 60_000 });

test("passages are embedded and searched by meaning", async () => {
  const agent = await client.agents.create({ name: "archivist", model: "openai/gpt-4o-mini" });
  const [p] = await client.agents.passages.create(agent.id, { text: "The cat is called Pixel.", tags: ["pets"] });
  await client.agents.passages.create(agent.id, { text: "Tea at four every day." });
  assert.equal(p.embedding.length, 1536);
  assert.equal(p.embedding_config.embedding_model, "text-embedding-3-small");

  const listed = await client.agents.passages.list(agent.id);
  assert.equal(listed.length, 2);
  assert.ok(listed.every((x) => x.embedding.length === 1536), "listed passages keep their embeddings");

  // "CAT? PIXEL!" matches no passage's words as written; its meaning does.
  const found = await client.agents.passages.search(agent.id, { query: "CAT? PIXEL!" });
  assert.ok(found.count >= 1, JSON.stringify(found));
  assert.equal(found.results[0].id, p.id);
  assert.equal(found.search_mode, "hybrid");
});

test("a shared archive joins an agent's search", async () => {
  const agent = await client.agents.create({ name: "reader", model: "openai/gpt-4o-mini" });
  const archive = await client.archives.create({ name: "team notes" });
  const p = await client.archives.passages.create(archive.id, { text: "The office wifi password is on the fridge." });
  assert.equal(p.archive_id, archive.id);
  await client.agents.archives.attach(archive.id, { agent_id: agent.id });

  const found = await client.agents.passages.search(agent.id, { query: "WIFI? PASSWORD?" });
  assert.equal(found.results[0]?.id, p.id, JSON.stringify(found));

  const hits = await client.passages.search({ query: "where is the wifi password", archive_id: archive.id });
  assert.equal(hits[0].passage.id, p.id);
  assert.ok(hits[0].score > 0);

  await client.archives.passages.delete(p.id, { archive_id: archive.id });
  await client.archives.delete(archive.id);
  await assert.rejects(client.archives.retrieve(archive.id), (e) => e.status === 404);
});

test("the agent's archival tools embed what they store and search", async () => {
  const agent = await client.agents.create({ name: "tool-user", model: "openai/gpt-4o-mini" });
  await script(
    { tool_calls: [{ id: "call_ins", name: "archival_memory_insert", arguments: { content: "The spare key is under the blue flowerpot." } }] },
    { tool_calls: [{ id: "call_find", name: "archival_memory_search", arguments: { query: "KEY? FLOWERPOT?" } }] },
    { text: "Found it." },
  );
  const res = await client.agents.messages.create(agent.id, {
    messages: [{ role: "user", content: "Remember where the key is, then look it up." }],
  });
  const ret = res.messages.find((m) => m.message_type === "tool_return_message" && m.tool_call_id === "call_find");
  assert.ok(ret, JSON.stringify(res.messages.map((m) => m.message_type)));
  assert.match(ret.tool_return, /spare key/);
  assert.match(ret.tool_return, /"search_mode":"hybrid"/);
  const [stored] = await client.agents.passages.list(agent.id);
  assert.equal(stored.embedding.length, 1536);
});
