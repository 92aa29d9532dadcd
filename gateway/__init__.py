"""callgate: one gateway for voice-AI call webhooks."""

__version__ = "0.1.0"
