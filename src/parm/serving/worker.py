"""The process behind one local instance: ``python -m parm.serving.worker SPEC_JSON``.

It loads its model, says it is ready, then answers each batch frame read from stdin with an
output frame on stdout, one batch at a time. It exits when stdin closes (its frontend is gone).
"""

from __future__ import annotations

import gc
import json
import sys

from parm.serving.instance import InstanceSpec, ModelInstance
from parm.serving.wire import pack, read_frame_sync


def serve(spec: InstanceSpec) -> None:
    instance = ModelInstance(spec)
    gc.freeze()  # torch and the model live as long as the process: a full collection over them would stall a call
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    ready = {"ready": spec.id}
    if spec.shuffle_endpoint:
        from parm.serving.shuffle_endpoint import start_endpoint

        ready["shuffle_port"] = start_endpoint()
    stdout.write(pack(ready))
    stdout.flush()
    while (frame := read_frame_sync(stdin)) is not None:
        header, inputs = frame
        stdout.write(pack({"batch": header["batch"]}, instance.run(inputs)))
        stdout.flush()


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m parm.serving.worker SPEC_JSON (started by `parm serve`, not by hand)")
    serve(InstanceSpec.from_dict(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
