"""The public REST API under /api/v1: every page action is a call a script can make too."""
