// Folders and files through Letta's official TypeScript SDK: upload a
// Markdown file and a PDF, poll them until processed, attach the folder to
// an agent, open and close its files, and have the agent (the model double)
// call grep_files and open_files and read the files' text. Run by
// sdk_folders_test.go with KELPIE_BASE_URL, LLM_CONTROL_URL and
// KELPIE_TEST_PDF (a PDF the Go test wrote) set.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import Letta, { toFile } from "@letta-ai/letta-client";
import { script, requests } from "./llm.mjs";

const client = new Letta({ baseURL: process.env.KELPIE_BASE_URL, apiKey: "unused", maxRetries: 0, timeout: 60_000 });

const notes = "# Hangar notes\n\nThe hangar door code is ZEBRA-42. Change it monthly.\n";

async function processed(folderID, fileID) {
  for (let i = 0; i < 500; i++) {
    const f = await client.folders.files.retrieve(fileID, { folder_id: folderID });
    if (f.processing_status === "completed" || f.processing_status === "error") return f;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`file ${fileID} was never processed`);
}

test("uploaded files are processed, attached, opened and read by the agent", async () => {
  const folder = await client.folders.create({ name: "manuals", description: "Hangar manuals" });
  assert.match(folder.id, /^source-/);
  const md = await client.folders.files.upload(folder.id, { file: await toFile(Buffer.from(notes), "notes.md", { type: "text/markdown" }) });
  assert.equal(md.processing_status, "parsing");
  // Letta's names: the upload answers the stored name under the folder's,
  // listings show it without (below).
  assert.equal(md.file_name, "manuals/notes.md");
  assert.equal(md.original_file_name, "notes.md");
  const pdf = await client.folders.files.upload(folder.id, {
    file: await toFile(readFileSync(process.env.KELPIE_TEST_PDF), "pilot.pdf", { type: "application/pdf" }),
  });
  for (const f of [md, pdf]) {
    const done = await processed(folder.id, f.id);
    assert.equal(done.processing_status, "completed", JSON.stringify(done));
    assert.ok(done.total_chunks >= 1 && done.chunks_embedded === done.total_chunks, JSON.stringify(done));
  }
  const withText = await client.folders.files.retrieve(pdf.id, { folder_id: folder.id, include_content: true });
  assert.match(withText.content, /The pilot is Ada Lovelace\./);
  const files = [];
  for await (const f of client.folders.files.list(folder.id)) files.push(f.file_name);
  assert.deepEqual(files.sort(), ["notes.md", "pilot.pdf"]);

  const agent = await client.agents.create({ name: "mechanic", model: "openai/gpt-4o-mini" });
  assert.equal(await client.agents.folders.attach(folder.id, { agent_id: agent.id }), null);
  const attached = [];
  for await (const f of client.agents.folders.list(agent.id)) attached.push(f.id);
  assert.deepEqual(attached, [folder.id]);
  assert.deepEqual(await client.folders.agents.list(folder.id), [agent.id]);
  const views = [];
  for await (const f of client.agents.files.list(agent.id)) views.push(f);
  assert.equal(views.length, 2);
  assert.ok(views.every((v) => v.is_open && v.folder_name === "manuals"), JSON.stringify(views));
  const closed = await client.agents.files.closeAll(agent.id);
  assert.deepEqual(closed.sort(), ["manuals/notes.md", "manuals/pilot.pdf"]);
  assert.deepEqual(await client.agents.files.open(md.id, { agent_id: agent.id }), []);
  await client.agents.files.close(md.id, { agent_id: agent.id });

  await script(
    { tool_calls: [{ id: "call_grep", name: "grep_files", arguments: { pattern: "door code" } }] },
    { tool_calls: [{ id: "call_open", name: "open_files", arguments: { file_requests: [{ file_name: "manuals/pilot.pdf" }] } }] },
    { text: "The code is ZEBRA-42 and the pilot is Ada Lovelace." },
  );
  const res = await client.agents.messages.create(agent.id, {
    messages: [{ role: "user", content: "What is the hangar door code, and who is the pilot?" }],
  });
  const grep = res.messages.find((m) => m.message_type === "tool_return_message" && m.tool_call_id === "call_grep");
  assert.ok(grep, JSON.stringify(res.messages.map((m) => m.message_type)));
  assert.equal(grep.status, "success");
  assert.match(grep.tool_return, /=== manuals\/notes\.md:1 ===/);
  assert.match(grep.tool_return, /ZEBRA-42/);
  const open = res.messages.find((m) => m.message_type === "tool_return_message" && m.tool_call_id === "call_open");
  assert.equal(open.tool_return, "* Opened manuals/pilot.pdf");
  const reqs = await requests();
  const last = reqs[reqs.length - 1];
  assert.ok(reqs[0].tools.includes("grep_files"), "the agent is offered grep_files");
  assert.match(last.system, /<directory name="manuals">/);
  assert.match(last.system, /<file status="open" name="manuals\/pilot\.pdf">/);
  assert.match(last.system, /The pilot is Ada Lovelace\./);

  await client.folders.files.delete(md.id, { folder_id: folder.id });
  await assert.rejects(client.folders.files.retrieve(md.id, { folder_id: folder.id }), (e) => e.status === 404);
  await client.folders.delete(folder.id);
  await assert.rejects(client.folders.retrieve(folder.id), (e) => e.status === 404);
});
