"""ASGI middleware wrapped around the whole app, outermost first: request metrics, then the
input guard (body size, control characters), which answers before routing, authentication or
any body is read."""
