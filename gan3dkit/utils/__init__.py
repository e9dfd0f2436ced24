"""Small shared utilities (image grids and visualisation, atomic file writes)."""
