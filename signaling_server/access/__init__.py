"""Who may see what: the one place each patient-data resource's access is decided (docs/SECURITY.md §2, §3).

- `policy.py`  the caller's `Scope` (their own site, the sites they serve, the objects their grants open) and one
               decision per resource: studies, reports, patients, consultations and their chat, recordings;
               where an object may be stored (`storing_site`).
- `assignments.py`  which sites a user (expert, admin, registrar) serves.
- `grants.py`  explicit grants: a consultation, a referral, a report shared for mutual recognition, naming the
               objects they open, for whom and until when.
- `routes.py`  managing assignments (admins) and grants (registrars, admins) over REST.

Nothing else grants sight of patient data: a linked identity, a role or a shared regional ID show nothing new.
"""
