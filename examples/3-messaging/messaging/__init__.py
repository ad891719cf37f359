"""messaging: the components of Goka's 3-messaging example, one module each (see ../main.py)."""
