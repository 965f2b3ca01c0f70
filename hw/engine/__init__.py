"""The layer-sequential engine: one set of units time-multiplexed over the layers (issue 12)."""
