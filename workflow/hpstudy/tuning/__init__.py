"""Tuning stage: selection of each study's winner and adaptive search."""
