"""Auth: API keys, roles and organisation scoping, idempotent writes."""
