"""Critical findings: flagged while reporting, acknowledged by the referring centre, escalated until they are."""
