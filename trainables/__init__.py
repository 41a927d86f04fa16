"""Co-teaching and its baselines: the training loop and its Ray Tune Trainable."""
