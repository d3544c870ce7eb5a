"""Where results go: sinks (JSONL, annotated video, callbacks), drawing, the mosaic and the
live view that displays read from."""
