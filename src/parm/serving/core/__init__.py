"""The pure core of a coded frontend: no sockets, processes or clocks.

`pools` plans which instances serve which model in each redundancy mode, `coordinator` groups,
encodes, dispatches, decodes and answers queries as events in and actions out, and `codec` runs a
trained code on batches of groups. The frontend and the simulator drive the same objects.
"""
