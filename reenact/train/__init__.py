"""Training: the loop, its checkpoints, and the monitor."""
