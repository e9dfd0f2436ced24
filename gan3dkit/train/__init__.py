"""Training: the GAN training loop, its config, checkpoints and statistics."""
