"""The rule engine, no I/O: fact vocabulary, rule schema, loader, compiler, evaluation, traces."""
