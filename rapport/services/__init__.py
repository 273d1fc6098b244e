"""Services every entrance calls: settings, as-of clock, rules in force, evaluation, delivery."""
