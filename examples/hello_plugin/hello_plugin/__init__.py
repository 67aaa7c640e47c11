"""hello: a third-party grok2api plugin, installed as its own distribution."""
