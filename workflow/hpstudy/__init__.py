"""hpstudy: a reproducible re-run of the post "Experiments on hyperparameter tuning in deep
learning — rules to follow" as a Snakemake + DVC pipeline.

Every pipeline step is a function in a module of this package and also a command of the
``hpstudy`` CLI (see :mod:`hpstudy.cli`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hpstudy")
except PackageNotFoundError:  # running from a checkout without `pip install -e .`
    __version__ = "0.0.0+unknown"
