"""The edge's spools at rest: stills waiting in the outbox and recordings waiting for upload are sealed with
AES-256-GCM on the clinic PC's disk (docs/SECURITY.md §9).

``keys`` (the spool key file: where it lives, made on first run, rotated with ``--new-spool-key``) and ``sealed``
(the sealed file format: an append-only writer, a plaintext view that reads at any offset, and the repairs the
spools need: finishing a torn file, sealing a file an older version left in clear, re-sealing under a new key).
"""
