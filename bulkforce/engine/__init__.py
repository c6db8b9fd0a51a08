"""Record processing: schema, field coercion, Ids, DML and per-record results."""
