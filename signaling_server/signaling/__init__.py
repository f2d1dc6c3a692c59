"""Signaling: one WebSocket per participant, JSON messages (PROTOCOL.md §2), in-process rooms."""
