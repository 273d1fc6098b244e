"""The HTTP API: events and customers in, facts, explanations and staff tasks out."""
