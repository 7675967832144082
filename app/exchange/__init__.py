"""Exchange: the LPZ-style capacity snapshot and CSV, and FHIR R4 (R4B models) import/export."""
