"""What changed, told to whoever waits on it: the cross-process relay and the console's change notices.

`relay.py` carries short messages on a named channel to every server process (Redis pub/sub when several share
one Redis; nothing beyond this process otherwise); the edge's doorbell and the change notices both ride it.
`changes.py` is the notice itself and who may hear it; `hub.py` the subscribers of this process;
`stream.py` the `GET /api/v1/events` Server-Sent Events route (PROTOCOL.md §6).
"""
