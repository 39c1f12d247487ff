"""Routes, one module per resource (health, matching, needs, results, triage, feedback, partners)."""
