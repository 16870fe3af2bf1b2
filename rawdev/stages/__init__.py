"""Pipeline stages: small pure functions on tensors. See :mod:`rawdev.types` for the conventions."""
