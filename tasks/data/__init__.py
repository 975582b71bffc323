"""Stage 1, the day's data: landing files in (ingest, importers, demo), row contracts, validation, dataset expectations, the contract policy and each day's recorded progress."""
