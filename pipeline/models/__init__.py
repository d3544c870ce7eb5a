"""Models: reading model files, device strings, the compiled model and its request pool
(`runtime`), the detector, and the pre/postprocessing adapters of each model family."""
