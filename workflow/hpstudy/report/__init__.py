"""Report stage: tidy tables from the runs, the post's own runs and the comparison, findings,
figures, diffs and TensorBoard files. Reads the tables; side by side, never stacked."""
