"""The agent graph: state, prompts, the tool node, constraints, grounding, the episode
reward and the chat session."""
