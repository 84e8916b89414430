import sys

from essop.cli import main

sys.exit(main())
