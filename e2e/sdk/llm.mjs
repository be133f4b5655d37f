// Client of the scripted model double's control API (llm_control_test.go):
// the Go test runs the double; node tests queue its replies and read what
// Kelpie sent it.
const base = process.env.LLM_CONTROL_URL;
if (!base) throw new Error("LLM_CONTROL_URL is not set: run this file through go test ./e2e");

async function call(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`llm control ${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

/**
 * Queues replies, used one per completion request. A reply is
 * {text, reasoning, tool_calls: [{id, name, arguments}], usage: {prompt_tokens, completion_tokens},
 *  stop_reason, status, error_message, chunk_size, delay_ms, chunk_delay_ms};
 * tool call arguments may be an object (sent as its JSON).
 */
export async function script(...replies) {
  const norm = replies.map((r) => ({
    ...r,
    tool_calls: (r.tool_calls ?? []).map((c) => ({
      ...c,
      arguments: typeof c.arguments === "string" ? c.arguments : JSON.stringify(c.arguments ?? {}),
    })),
  }));
  await call("POST", "/script", norm);
}

/** Every completion request the double received: {api, model, system, messages, tools, stream, rejected, ...}. */
export async function requests() {
  return call("GET", "/requests");
}

/** How many scripted replies are unused. */
export async function pending() {
  return (await call("GET", "/pending")).pending;
}

/** The text of a LettaMessage's content: a string or [{type:"text", text}]. */
export function textOf(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => p.text ?? "").join("");
  return "";
}
