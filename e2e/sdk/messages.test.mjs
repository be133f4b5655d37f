// Drives a conversation with a Kelpie agent through Letta's official
// TypeScript SDK: send, stream, list, a block edit seen by the next turn, and
// deletion. The model is a scripted double (llm.mjs) run by the Go test
// (sdk_test.go), which sets KELPIE_BASE_URL, LLM_CONTROL_URL and BLOCK_MARK.
import { test } from "node:test";
import assert from "node:assert/strict";
import Letta from "@letta-ai/letta-client";
import { script, requests, pending, textOf } from "./llm.mjs";

const base = process.env.KELPIE_BASE_URL;
const mark = process.env.BLOCK_MARK;
assert.ok(base && mark, "KELPIE_BASE_URL and BLOCK_MARK must be set (run through go test ./e2e)");
const client = new Letta({ baseURL: base, apiKey: "unused", maxRetries: 0, timeout: 60_000 });

let agent; // shared by the steps below, which run in order
const need = () => assert.ok(agent, "the agent was not created (see the first test)");

const byType = (msgs, type) => msgs.filter((m) => m.message_type === type);

/** Reads a stream to its end, with a bound on the number of events. */
async function drain(stream) {
  const events = [];
  for await (const ev of stream) {
    events.push(ev);
    assert.ok(events.length < 10_000, "the stream does not end");
  }
  return events;
}

/** Checks a stream's tail: no error, stop_reason end_turn then usage_statistics. */
function checkStreamEnd(events, steps = 1) {
  const types = events.map((e) => e.message_type);
  assert.ok(!types.includes("error_message"), `error in stream: ${JSON.stringify(events.find((e) => e.message_type === "error_message"))}`);
  const stops = events.filter((e) => e.message_type === "stop_reason");
  assert.equal(stops.length, 1, `one stop_reason in ${JSON.stringify(types)}`);
  assert.equal(stops[0].stop_reason, "end_turn");
  const usage = events.filter((e) => e.message_type === "usage_statistics");
  assert.equal(usage.length, 1, `one usage_statistics in ${JSON.stringify(types)}`);
  assert.ok(types.indexOf("stop_reason") < types.indexOf("usage_statistics"), `stop_reason comes before usage_statistics: ${JSON.stringify(types)}`);
  const content = types.filter((t) => t !== "ping");
  assert.equal(content.at(-1), "usage_statistics", `the stream ends with usage_statistics: ${JSON.stringify(types)}`);
  assert.equal(usage[0].step_count, steps);
  assert.ok(usage[0].total_tokens > 0, "usage counts tokens");
  return usage[0];
}

/** Concatenates a stream's assistant_message chunks, per message id. */
function assistantTexts(events) {
  const texts = new Map();
  for (const e of byType(events, "assistant_message")) {
    assert.ok(e.id, "assistant_message has an id");
    texts.set(e.id, (texts.get(e.id) ?? "") + textOf(e.content));
  }
  return [...texts.values()];
}

async function lastRequest() {
  const reqs = await requests();
  assert.ok(reqs.length > 0, "the model received no request");
  return reqs.at(-1);
}

test("create an agent with memory blocks", async () => {
  agent = await client.agents.create({
    name: "chat-agent",
    model: "openai/gpt-4o-mini",
    memory_blocks: [
      { label: "human", value: "Name: Ada" },
      { label: "persona", value: "I am Kelpie's careful test persona." },
    ],
  });
  assert.match(agent.id, /^agent-[0-9a-f-]{36}$/);
  assert.equal(agent.llm_config.model, "gpt-4o-mini");
});

test("send a message and get the scripted answer", async () => {
  need();
  await script({ text: "pong", usage: { prompt_tokens: 120, completion_tokens: 7 } });
  const res = await client.agents.messages.create(agent.id, { messages: [{ role: "user", content: "ping" }] });

  const types = res.messages.map((m) => m.message_type);
  const assistant = byType(res.messages, "assistant_message");
  assert.equal(assistant.length, 1, `one assistant_message in ${JSON.stringify(types)}`);
  assert.equal(textOf(assistant[0].content), "pong");
  assert.match(assistant[0].id, /^message-[0-9a-f-]{36}$/);
  assert.ok(!Number.isNaN(Date.parse(assistant[0].date)), `assistant_message date ${assistant[0].date} is ISO 8601`);
  assert.equal(res.stop_reason.message_type, "stop_reason");
  assert.equal(res.stop_reason.stop_reason, "end_turn");
  assert.equal(res.usage.message_type, "usage_statistics");
  assert.equal(res.usage.prompt_tokens, 120);
  assert.equal(res.usage.completion_tokens, 7);
  assert.equal(res.usage.total_tokens, 127);
  assert.equal(res.usage.step_count, 1);
  for (const m of res.messages) {
    assert.ok(!["system_message"].includes(m.message_type), `this turn's messages only: ${JSON.stringify(types)}`);
  }

  // What the model saw: the memory blocks in the system prompt, the user's message last.
  const req = await lastRequest();
  assert.equal(req.model, "gpt-4o-mini");
  assert.equal(req.rejected, "", `the OpenAI API would reject kelpie's request: ${req.rejected}`);
  assert.ok(req.system.includes("Name: Ada"), `system prompt has the human block:\n${req.system}`);
  assert.ok(req.system.includes("I am Kelpie's careful test persona."), `system prompt has the persona block:\n${req.system}`);
  const lastUser = req.messages.filter((m) => m.role === "user").at(-1);
  assert.ok(lastUser && lastUser.content.includes("ping"), `the last user message carries "ping": ${JSON.stringify(req.messages)}`);
  assert.equal(await pending(), 0);
});

test("send with the input shortcut", async () => {
  need();
  await script({ text: "shortcut answered" });
  const res = await client.agents.messages.create(agent.id, { input: "via input" });
  assert.deepEqual(byType(res.messages, "assistant_message").map((m) => textOf(m.content)), ["shortcut answered"]);
  assert.equal(res.stop_reason.stop_reason, "end_turn");
  const req = await lastRequest();
  assert.ok(req.messages.some((m) => m.role === "user" && m.content.includes("via input")), "the input reached the model");
});

test("stream a message token by token (streaming: true, stream_tokens: true)", async () => {
  need();
  const text = "The quick brown fox says pong.";
  await script({ text, chunk_size: 3, usage: { prompt_tokens: 50, completion_tokens: 9 } });
  const stream = await client.agents.messages.create(agent.id, {
    messages: [{ role: "user", content: "stream me" }],
    streaming: true,
    stream_tokens: true,
  });
  const events = await drain(stream);
  const usage = checkStreamEnd(events);
  assert.equal(usage.prompt_tokens, 50);
  assert.equal(usage.completion_tokens, 9);
  const chunks = byType(events, "assistant_message");
  assert.ok(chunks.length >= 2, `stream_tokens streams the answer in pieces, got ${chunks.length} assistant_message event(s)`);
  assert.deepEqual(assistantTexts(events), [text]);
  const req = await lastRequest();
  assert.equal(req.stream, true, "stream_tokens streams from the model too");
});

test("stream a message step by step (streaming: true)", async () => {
  need();
  await script({ text: "one whole answer" });
  const stream = await client.agents.messages.create(agent.id, {
    messages: [{ role: "user", content: "stream steps" }],
    streaming: true,
  });
  const events = await drain(stream);
  checkStreamEnd(events);
  assert.deepEqual(assistantTexts(events), ["one whole answer"]);
});

test("stream through the older /messages/stream route", async () => {
  need();
  await script({ text: "old route pong" });
  const stream = await client.agents.messages.stream(agent.id, {
    messages: [{ role: "user", content: "old route" }],
    stream_tokens: true,
  });
  const events = await drain(stream);
  checkStreamEnd(events);
  assert.deepEqual(assistantTexts(events), ["old route pong"]);
});

test("a streamed answer is text/event-stream with data-only events", async () => {
  need();
  await script({ text: "raw pong" });
  const res = await fetch(`${base}/v1/agents/${agent.id}/messages`, {
    method: "POST",
    // The SDK sends Accept: application/json even when streaming.
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "raw" }], streaming: true, stream_tokens: true }),
  });
  assert.equal(res.status, 200);
  const ct = res.headers.get("content-type") ?? "";
  assert.equal(ct.split(";")[0].trim(), "text/event-stream", `content-type ${ct}`);
  const body = await res.text();
  const frames = body.split("\n\n").filter((f) => f.trim() !== "");
  assert.equal(frames.at(-1), "data: [DONE]", `the stream ends with data: [DONE]; tail: ${JSON.stringify(frames.slice(-3))}`);
  for (const f of frames) {
    assert.ok(f.startsWith("data: "), `every event is data-only (no event: line): ${JSON.stringify(f)}`);
  }
  const events = frames.slice(0, -1).map((f) => JSON.parse(f.slice("data: ".length)));
  checkStreamEnd(events);
  assert.deepEqual(assistantTexts(events), ["raw pong"]);
});

test("list messages and see the user's and the assistant's", async () => {
  need();
  const all = [];
  for await (const m of client.agents.messages.list(agent.id, { limit: 3 })) {
    all.push(m);
    assert.ok(all.length < 1000, "listing does not end");
  }
  const users = byType(all, "user_message").map((m) => textOf(m.content));
  const assistants = byType(all, "assistant_message").map((m) => textOf(m.content));
  for (const u of ["ping", "via input", "stream me", "stream steps", "old route", "raw"]) {
    assert.ok(users.some((c) => c.includes(u)), `a user_message with ${JSON.stringify(u)} in ${JSON.stringify(users)}`);
  }
  for (const a of ["pong", "shortcut answered", "The quick brown fox says pong.", "one whole answer", "old route pong", "raw pong"]) {
    assert.ok(assistants.includes(a), `an assistant_message ${JSON.stringify(a)} in ${JSON.stringify(assistants)}`);
  }
  const keys = all.map((m) => `${m.id}/${m.otid ?? ""}/${m.message_type}`);
  assert.equal(new Set(keys).size, keys.length, "pagination returns no message twice");

  // Newest first by default; order=asc reverses it.
  const iPing = all.findIndex((m) => m.message_type === "user_message" && textOf(m.content).includes("ping"));
  const iPong = all.findIndex((m) => m.message_type === "assistant_message" && textOf(m.content) === "pong");
  assert.ok(iPong < iPing, "default order is newest first: the answer comes before its question");
  const asc = [];
  for await (const m of client.agents.messages.list(agent.id, { order: "asc" })) {
    asc.push(m);
    assert.ok(asc.length < 1000, "listing does not end");
  }
  const jPing = asc.findIndex((m) => m.message_type === "user_message" && textOf(m.content).includes("ping"));
  const jPong = asc.findIndex((m) => m.message_type === "assistant_message" && textOf(m.content) === "pong");
  assert.ok(jPing >= 0 && jPing < jPong, "order=asc is oldest first");
  assert.equal(asc.length, all.length, "both orders list the same messages");
});

test("a block edited by label is in the next turn's prompt", async () => {
  need();
  const value = `Name: Ada Lovelace, ${mark}`;
  const block = await client.agents.blocks.update("human", { agent_id: agent.id, value });
  assert.equal(block.value, value);
  assert.ok(!(await lastRequest()).system.includes(mark), "no prompt had the new value before the edit");

  await script({ text: "noted" });
  const res = await client.agents.messages.create(agent.id, { messages: [{ role: "user", content: "who am I?" }] });
  assert.deepEqual(byType(res.messages, "assistant_message").map((m) => textOf(m.content)), ["noted"]);
  const req = await lastRequest();
  assert.ok(req.system.includes(value), `the next turn's system prompt has the edited block:\n${req.system}`);
});

test("delete the agent", async () => {
  need();
  await client.agents.delete(agent.id);
  await assert.rejects(client.agents.retrieve(agent.id), (err) => err.status === 404);
  await assert.rejects(client.agents.messages.list(agent.id), (err) => err.status === 404);
  await assert.rejects(
    client.agents.messages.create(agent.id, { messages: [{ role: "user", content: "anyone?" }] }),
    (err) => err.status === 404,
  );
  assert.equal(await pending(), 0, "every scripted reply was used");
});
