"""Encoders: networks that map images to latents and cameras of a 3D GAN, trained on its own renders."""
