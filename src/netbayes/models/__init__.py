"""Model builders: survival (Weibull) and toxicity (ordinal CTCAE)."""
