import sys

from claynb.cli import main

sys.exit(main())
