"""The HTTP kit: the plumbing routers and the web app share (dependencies, middleware, the
access-log route class, the write unit of work)."""
