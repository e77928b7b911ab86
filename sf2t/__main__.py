"""``python -m sf2t ...`` (and ``torchrun -m sf2t train ...``): the ``sf2t`` command."""

from sf2t.cli import main

raise SystemExit(main())
