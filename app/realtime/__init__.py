"""Real-time: the transactional outbox that feeds server-sent events and webhooks."""
