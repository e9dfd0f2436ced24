"""Typer command-line interface; commands parse arguments and call one library function each."""
