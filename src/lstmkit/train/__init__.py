"""Training: the BPTT loop, checkpoints, metrics."""
