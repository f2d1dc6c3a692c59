"""The recording domain (RECORDINGS.md): the timeline format the edge writes and the server reads, the one session
clock over a recording's segments, the files store, reading media files and scoring a recording offline into its QC
record (`teleus qc score`), de-identification and the teaching export. Imports only qc/; the server's side (upload
routes, training reviews, the QC dashboard) is signaling_server/session_recordings, training and quality."""
