"""Analytics over the telemetry tables: profiles, cost reports, repricing, checks."""
