"""The hub: facility configs applied to JupyterHub (config.py), the participant cap (caps.py),
the embedded default on 127.0.0.1 (local.py) and Helm values for the facilities (render.py)."""
