"""Face parsing models: one Parser interface, many tiers (see models.parsers.registry)."""
