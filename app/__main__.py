"""`python -m essop.app ...` is the `essop` command (the form subprocesses and scripts use)."""
import sys

from essop.app.cli import main

sys.exit(main())
