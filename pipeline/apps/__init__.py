"""Applications built on the engine: the command line, batch jobs, the demo, the benchmark."""
