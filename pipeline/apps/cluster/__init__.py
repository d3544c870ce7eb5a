"""Scale-out on a Ray cluster: batch folders and camera sets spread over the nodes."""
