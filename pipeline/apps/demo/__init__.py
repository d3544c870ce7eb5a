"""`vapipe demo`: the mosaic window, the browser view and the default model."""
