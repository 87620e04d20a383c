"""Training stage: the train job, loop, batches, optimisers, devices, checkpoints, locks,
weights, a run's identity and the models. Never imports data (the manifest is the contract)."""
