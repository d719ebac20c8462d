"""Lightning systems and data modules: wiring only."""
