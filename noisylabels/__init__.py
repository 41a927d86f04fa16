"""Primitives of learning with noisy labels that every layer above uses: data sets, label noise,
models, R(t) schedules, search spaces and the user-error type.  Imports no other package of this
project."""
