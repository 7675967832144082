"""Triage: versioned rule sets as data, a pure evaluator, static checks and the urgency language."""
