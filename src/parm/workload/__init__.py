"""What a latency experiment puts on a cluster, written once for the real bench and the simulator.

`arrivals` (Poisson query times), `service_time` (per-call laws and the seeded random streams),
`shuffles` (the background-transfer schedule), `faults` (when instances fail), `emulation` (the
service time of one emulated instance's calls, on a wall or a virtual clock) and `shuffle_traffic`
(real background bytes between instance processes). Nothing here imports serving or bench.
"""
