"""Rapport's database: SQLModel tables, sessions, migrations and fact queries."""
