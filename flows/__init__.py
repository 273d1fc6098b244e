"""Prefect flows: thin orchestration over engine, actions and storage."""
