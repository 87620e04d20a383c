"""The columns of a run's ``metrics.csv``: written by :mod:`hpstudy.train`, read by
:mod:`hpstudy.aggregate` and the tests. Kept here, free of torch, so readers import it cheaply."""

# one row per epoch, in this order
METRIC_COLUMNS = (
    "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_time_s",
    "train_time_s", "eval_time_s", "train_images_per_s", "peak_memory_mb",
)  # fmt: skip
# the columns that differ between two otherwise identical runs (wall-clock and memory)
TIMING_COLUMNS = (
    "epoch_time_s", "train_time_s", "eval_time_s", "train_images_per_s", "peak_memory_mb",
)  # fmt: skip
