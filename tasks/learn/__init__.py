"""Stage 3, learning: the training loop, evaluation protocols and metrics, bounded top-K ranking, training curves."""
