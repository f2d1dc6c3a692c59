"""The edge's spools at rest: stills waiting in the outbox and recordings waiting for upload are sealed with
AES-256-GCM on the clinic PC's disk (docs/SECURITY.md §9).

``keys`` (the spool key file: where it lives, made on first run), ``sealed`` (the sealed file format: an
append-only writer, a plaintext view that reads at any offset) and ``repairs`` (finishing a torn file, sealing a
file an older version left in clear, a new key that re-seals every spool file: ``--new-spool-key``).
"""
