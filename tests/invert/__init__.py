"""Tests of gan3dkit.invert and `gan3dkit invert`."""
