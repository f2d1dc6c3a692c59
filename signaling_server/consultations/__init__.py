"""Consultations: the one state machine, and the small named queries and actions on them."""
