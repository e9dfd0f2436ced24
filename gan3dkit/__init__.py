"""gan3dkit: 3D-aware GAN toolkit (datasets, EG3D-style triplane GANs, inversion, evaluation)."""

__version__ = "0.1.0"
