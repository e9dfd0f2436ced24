"""Machine-readable data specifications (LMDB format, pose priors), shipped as `gan3dkit.data_specs`."""
