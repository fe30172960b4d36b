"""Report frames (pure pandas), their renderings and exports."""
