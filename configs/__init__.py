"""Hydra configs of social-xlstm, shipped as the package ``social_xlstm.configs`` (see setup.py)."""
