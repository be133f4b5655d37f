// Package providers implements llm.Provider over the vendors' official Go
// SDKs: OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, llama.cpp)
// and Anthropic's Messages API, and configures them from the environment.
// An OpenAI chat-completions request is encoded here (openai_request.go)
// and posted with net/http (openai_http.go): the SDK's encoder was a tenth
// of a turn's CPU, and its per-request machinery about as much as encoding.
// The SDK still lists models.
//
// It is kept apart from package llm so that code which only needs the
// interface (the agent loop, and the simulation built for WebAssembly) does
// not link the SDKs.
package providers
