"""Experiment statistics: lift with confidence intervals and p-values, and the sample-ratio check."""
