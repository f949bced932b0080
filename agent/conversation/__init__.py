"""The agent graph: state, constraints (prices, references, relaxation), the tool node,
composed replies, grounding and claims, the episode reward and the chat session."""
