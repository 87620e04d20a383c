"""Sweep stage: a config becomes a plan (every distinct run once), runs added by later steps,
and restoring pulled outputs."""
