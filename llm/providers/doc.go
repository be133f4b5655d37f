// Package providers implements llm.Provider over the vendors' official Go
// SDKs: OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, llama.cpp)
// and Anthropic's Messages API, and configures them from the environment.
// An OpenAI request's body is encoded here from its wire types
// (openai_request.go) and sent by the SDK, whose own encoder was a tenth of
// a turn's CPU.
//
// It is kept apart from package llm so that code which only needs the
// interface (the agent loop, and the simulation built for WebAssembly) does
// not link the SDKs.
package providers
