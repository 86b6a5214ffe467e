"""Bundled data (PTB, NAS-Bench-NLP ground truth, Serianni & Kalita scores) and the corpus loaders."""
