"""The HTTP server: a thin face over the engines."""
