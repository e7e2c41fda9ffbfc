"""The HTTP routes, one module per domain: each handler parses its form, makes one service call and replies."""
