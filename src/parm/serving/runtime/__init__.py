"""The running frontend: what it serves (`deployment`), the event loop that drives the coordinator
with a backend (`frontend`), and what it reports (`metrics`, `logs`)."""
