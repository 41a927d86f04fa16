"""s2e-tune: search the sample-selection schedule R(t) of Co-teaching with S2E on Ray Tune."""

__version__ = "0.1.0"
