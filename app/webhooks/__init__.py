"""Webhooks: per-organisation subscriptions, signed at-least-once delivery from the outbox."""
