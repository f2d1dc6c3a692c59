"""The expert console and the sonographer's screen: static ES modules served by the server, no build step."""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent
