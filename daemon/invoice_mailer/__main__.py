"""`python -m invoice_mailer` is the same as the `invoice-mailer` command."""

import sys

from .cli import main

sys.exit(main())
