"""The terminal: rendering text that is not ours safely, and the interactive chat loop."""
