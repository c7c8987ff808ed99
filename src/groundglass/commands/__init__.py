"""CLI command groups; ``groundglass.cli`` mounts each one. Each module owns one group."""
