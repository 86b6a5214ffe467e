"""Ground truth: the NAS-Bench-NLP PTB benchmark and user-supplied benchmarks."""
