import sys

from logos_desktop.app import main

sys.exit(main())
