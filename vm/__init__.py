"""dtx package."""
