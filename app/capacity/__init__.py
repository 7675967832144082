"""Capacity: append-only reports, current availability and the availability search."""
