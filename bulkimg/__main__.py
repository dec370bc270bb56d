"""`python -m bulkimg`."""

from bulkimg.cli import main

main()
