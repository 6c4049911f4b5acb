"""`parm serve`'s frontend on the Ray backend, queried with tritonclient; run by test_ray_backend.py in a netns.

Usage: ``python ray_serve_script.py WORKDIR``. Prints one line ``SUMMARY {json}`` at the end.
"""

from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import tritonclient.http as triton

sys.path.insert(0, str(Path(__file__).parent.parent))
from exact_runs import INPUT_SHAPE, affine_run  # noqa: E402

from parm.serving import Frontend, ServeOptions, build_deployment  # noqa: E402
from parm.serving.backends.ray import RayBackend  # noqa: E402
from parm.serving.core.coordinator import CoordinatorConfig  # noqa: E402
from parm.serving.http.server import serve_in_background  # noqa: E402


def main(workdir: Path) -> None:
    run, base = affine_run(workdir)
    backend = RayBackend(num_cpus_per_instance=0.5)
    frontend = Frontend(build_deployment(run, ServeOptions(instances=2, coding=CoordinatorConfig(group_wait=0.002),
                                                          delays={0: 0.02})), backend)
    queries = np.random.default_rng(0).random(size=(120, 1, *INPUT_SHAPE)).astype(np.float32)
    halfway, answered, lock = threading.Event(), [0], threading.Lock()
    with serve_in_background(frontend) as address:
        def send(x: np.ndarray) -> tuple[list, str]:
            tensor = triton.InferInput("input", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x)
            result = triton.InferenceServerClient(address).infer("toy-logistic-regression", [tensor])
            with lock:
                answered[0] += 1
                if answered[0] == 40:
                    halfway.set()
            return result.as_numpy("logits").tolist(), result.get_response()["parameters"]["answer"]

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(send, x) for x in queries]
            halfway.wait(timeout=120)
            frontend.loop.call_soon_threadsafe(backend.kill, 0)  # the backend lives on the server's loop
            results = [future.result(timeout=120) for future in futures]
        failures = frontend.registry.get_sample_value("parm_instance_failures_total", {"pool": "base"})
    with torch.no_grad():
        expected = base(torch.from_numpy(queries[:, 0])).numpy()
    wrong = [i for i, (output, _) in enumerate(results) if not np.allclose(output[0], expected[i], atol=1e-5)]
    kinds = sorted({kind for _, kind in results})
    print("SUMMARY " + json.dumps({"answered": len(results), "wrong": wrong, "kinds": kinds, "failures": failures}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
