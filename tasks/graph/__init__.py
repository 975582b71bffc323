"""Stage 2, the graph: stable dense ids for external ids, and the day's snapshot every model trains from."""
