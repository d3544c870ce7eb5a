"""The engine: decoder threads, the fair frame queue, the scheduler, in-order release, and the
`Pipeline` that wires them to a model and to sinks."""
