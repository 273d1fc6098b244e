"""Backtests: stored history replayed through a revision of the rules, nothing sent.

`runner.run_backtest` replays every customer through a `timeline.Window` (steps, warm-up,
outcome horizon) with `replay.Replay`, which calls the live pieces — facts, engine,
re-entry, planning, guards — and keeps in memory what live keeps in tables. What
happened is counted in `tally.Tally`, summarized by `results.summarize` (the `--json`
document) and shown by `tables`. The live tables are only ever read.

Modules: `history` (reading storage), `aggregates` (a customer's aggregates in Python,
equal to the SQL's), `drift` and `prefilter` (skipping steps where no rule can fire,
exactly), `staff` (tasks, the SLA watch), `outcomes` (churn signal precision and
recall), `replay`, `runner`, `tally`, `results`, `tables`; `ranking` and
`ranking_tables`: the repeat buyers most overdue on one day, and what they did next.
"""
