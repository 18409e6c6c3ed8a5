import sys

from training.evaluate.cli import main

sys.exit(main())
