#!/usr/bin/env python3
"""The send step as a script: ``python send.py ISSUE [options]`` is ``newsletter send ISSUE [options]``."""

import sys

from newsletters.cli import main

if __name__ == "__main__":
    main(["send", *sys.argv[1:]])
