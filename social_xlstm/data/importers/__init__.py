"""Importers: one module per published format, each returning a canonical Dataset."""
