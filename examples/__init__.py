"""Example actors (see examples/echo.py) and their generated messages."""
