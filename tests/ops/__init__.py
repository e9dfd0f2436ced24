# SPDX-License-Identifier: Apache-2.0
"""Tests for gan3dkit.ops (pure-PyTorch reference ops)."""
