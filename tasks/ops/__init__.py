"""Running it: the warehouse connection, the writer lock, the run registry, backfill planning, failpoints and checkpoints."""
