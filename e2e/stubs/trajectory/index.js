throw new Error("@letta-ai/trajectory is not available in Kelpie's test environment");
