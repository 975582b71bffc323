"""Stage 4, publishing: the top-K tables and the analysts' store with its data dictionary."""
