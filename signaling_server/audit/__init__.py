"""The audit trail: a row for every read and change of patient data, append-only and chained by SHA-256.

    coverage.py    which routes are audited, as what (one table, checked against the app's router by a test)
    middleware.py  the HTTP hooks: a row per request to an audited route, written before the answer leaves
    trail.py       the writer: one task per process, numbering, hashing and inserting rows; `verify`
    chain.py       the pure hash chain and its verifier
    subjects.py    the study and regional patient behind the object a row names
    search.py      the filters of the admin page;  routes.py  its REST API and CSV export
    access_log.py  the server's access log, without query strings (they carry patient names)

DICOM C-STORE (dicomstore/scp.py) and the forwarder (dicomstore/forward.py) append their own rows.
docs/SECURITY.md §6 says what is promised and how it is tested.
"""
