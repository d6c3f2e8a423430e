"""The ledger: assets, jobs, batches and pauses in SQLite, with enforced job-state transitions."""
