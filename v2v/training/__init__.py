"""Training: checkpoints, the progressive schedule, distributed helpers, and the training loop."""
