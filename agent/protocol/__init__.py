"""The tool-call protocol: schemas, chat templates, the parser, writer prompts, and the one
path from a parsed call to a search (``tool_search``)."""
