"""The central teleus server: auth, consultations, signaling, REST API."""
