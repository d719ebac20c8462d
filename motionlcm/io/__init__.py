"""File formats at the edges of the system (numpy only)."""
