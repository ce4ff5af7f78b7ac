"""`python -m invoice_mailer` is the same as the `invoice-mailer` command."""

import sys

from invoice_mailer.cli.main import main

sys.exit(main())
