"""`make demo`: a generated customer base run through every flow against a loopback SMTP sink."""
