"""`python -m edge_capture ARGS`: the edge agent's own entry point (`teleus edge ARGS` hands over to it)."""

import logging
import os
import sys

from edge_capture.cli import build_parser, run

args = build_parser().parse_args()
os.umask(0o077)  # besides the explicit modes (docs/SECURITY.md §9): whatever else the agent writes is private
logging.basicConfig(
    level=logging.DEBUG if args.verbose else logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)
sys.exit(run(args))
