"""Thin HTTP layer: parse, one service call, respond."""
