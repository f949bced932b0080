"""Settings: defaults, the config file, the environment and CLI flags, merged once."""
