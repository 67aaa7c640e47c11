"""``python -m grok2api``: the same as the ``grok2api`` command."""

import sys

from grok2api.cli.main import main

sys.exit(main())
