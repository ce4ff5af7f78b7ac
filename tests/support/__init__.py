"""What the tests share: real servers, real processes, real files, and the helpers around them.

helpers: wait_until (a deadline instead of a sleep) and drop (a file arriving as an invoicing
    program writes it).
configs: a minimal valid config, written as a real YAML file.
smtpserver: SmtpTestServer, the aiosmtpd server tests send to (TLS, STARTTLS, AUTH, faults;
    port given or free); tests/conftest.py makes it the fixtures smtp_server, start_smtp_server.
roguesmtp: RogueSmtpServer, a raw asyncio server that misbehaves where aiosmtpd cannot
    (fixture start_rogue_server).
service_harness: the real `invoice-mailer run` as a subprocess (ServiceProcess), its config and
    address book.
reliability_harness: a service killed and restarted at will (Supervisor), the ledger/disk
    consistency check and the figures of tests/reliability.
intake_harness: the intake as the service wires it (IntakeRunner); intake_child: the same in
    a process of its own, for SIGKILL tests (`python -m tests.support.intake_child CONFIG`).
cli: run_cli, the real command line in a subprocess.
webprocess: the real `invoice-mailer web` on a free loopback port (WebProcess); the office's
    ledger it shows is filled by the real service in tests/office/conftest.py.
delivery_bench: the delivery stage (Dispatcher, Archive, ledger) with an injected clock.
fatturapa_samples: FatturaPA XML, p7m and PDF files made to order, and the official samples.
hostile: XML that attacks its parser (entity expansion, XXE).
outside: the guard that fails the run when a test reads outside the checkout.
"""
