"""The relationship report: measures over a period, as text and as an HTML page with charts."""
