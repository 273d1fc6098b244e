"""The `rapport` command: one thin subcommand module per concern over the services."""
