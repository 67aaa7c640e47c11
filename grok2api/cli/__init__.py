"""The ``grok2api`` command: its parser, the kernel's own subcommands and ``serve``."""
