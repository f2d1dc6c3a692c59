"""Recording every live consultation at the edge and uploading it without loss (recordings/RECORDINGS.md).

::

    ring ──▶ Recorder thread (recorder.py) ──▶ media[.k].mp4 (mp4.py: H.264 + AAC, fragmented)
                 ▲        ▲                    timeline[.k].jsonl (recordings/timeline.py)
    voice hub ───┘        └── events (events.py) ◀── ConsultationLink via SessionRecording (session.py)

    <recordings>/<consultation>/ (spool.py) ──▶ RecordingUploader (upload.py, api.py) ──▶ server
"""
