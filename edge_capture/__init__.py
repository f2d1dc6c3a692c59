"""The edge capture agent: capture card (or synthetic/file source) → ring buffer → WebRTC to each viewer."""
