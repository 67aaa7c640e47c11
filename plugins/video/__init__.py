"""Video: ``grok-imagine-1.0-video`` through chat completions, and OpenAI's Videos API as durable jobs."""
