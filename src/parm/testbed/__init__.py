"""A multi-host testbed on one machine: hosts in network namespaces on shaped links, inside a sandbox that
leaves nothing behind (`sandbox`, `network`), and the check that it works (`check`)."""
