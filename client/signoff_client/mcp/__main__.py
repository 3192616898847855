import sys

from signoff_client.mcp import main

sys.exit(main())
