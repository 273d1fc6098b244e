"""Rapport's database: tables declared once, migrations, imports and every SQL query."""
