"""The rule engine side: fact vocabulary, rule schema, loader, compiler, explain."""
