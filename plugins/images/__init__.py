"""OpenAI's image endpoints on Grok: generation and editing, through pluggable image methods."""
