"""Report now: a triagist asks providers for fresh capacity reports (docs/report-requests.md)."""
