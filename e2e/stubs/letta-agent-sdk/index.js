throw new Error("@letta-ai/letta-agent-sdk is not available in Kelpie's test environment");
