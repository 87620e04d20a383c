"""``python -m hpstudy <command>`` — the same as the ``hpstudy`` console script."""

from hpstudy.cli import main

raise SystemExit(main())
