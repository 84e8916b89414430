"""`python -m essop.cli`: the command line lives in essop.app.cli; this module keeps the old name working."""
import sys

from essop.app.cli import USER_ERRORS, main

__all__ = ["USER_ERRORS", "main"]

if __name__ == "__main__":
    sys.exit(main())
