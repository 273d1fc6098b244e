"""The `rapport` subcommands, one module per group."""
