"""Lambda entry points: thin Powertools wiring over :mod:`pipelines`."""
