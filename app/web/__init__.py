"""Server-rendered web pages (Jinja2 + htmx): login, sessions, role homes; see docs/web.md."""
