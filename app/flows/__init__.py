"""Use-case flows: one step of work that spans several domains (search with partners and the
shortage count, triage with its placement, the region import, the demo, the background loops)."""
