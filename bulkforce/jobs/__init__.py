"""The domain: ingest jobs, their legal state transitions, and the orchestration around them."""
