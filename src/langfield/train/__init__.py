"""The training loop, checkpoints and image metrics."""
