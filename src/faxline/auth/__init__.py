"""OAuth apps and tokens, and who may act for whom."""
