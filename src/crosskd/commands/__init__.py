"""Subcommands of the `crosskd` console script, one module each with a `register` function."""
