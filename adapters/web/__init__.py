"""The built-in web inbox channel."""
