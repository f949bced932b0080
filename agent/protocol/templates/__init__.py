"""Package data: the Jinja chat templates."""
