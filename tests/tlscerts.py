"""The certificates live in the package (the demo needs them too); tests import them here."""

from invoice_mailer.tlscerts import (  # noqa: F401
    LOCAL_NAMES,
    WRONG_HOST,
    TestCerts,
    make_ca,
    make_ca_and_cert,
    make_self_signed_cert,
    make_server_cert,
    make_test_certs,
)
