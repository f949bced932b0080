"""The shopping agent: graph, state, prompts, LLM client and trajectory log."""
