import sys

from essop.app.cli import main

sys.exit(main())
