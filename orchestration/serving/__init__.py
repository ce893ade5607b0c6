"""The serving snapshot: the one file BI tools open."""
