"""Fetch the published feature tarballs and model-zoo checkpoints, verified, into the expected layout."""
