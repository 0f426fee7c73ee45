"""The session layer's parts; the public face is :mod:`federation.sessions`."""
