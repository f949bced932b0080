"""The trajectory log (crash-safe JSONL) and its exports."""
