import sys

from genlib.cli import main

sys.exit(main())
