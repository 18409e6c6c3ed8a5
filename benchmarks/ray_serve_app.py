"""The usual alternative to condgen's queue: the same generators behind Ray Serve, batched with @serve.batch.

Runs in its own environment (benchmarks/.venv-ray, made by `make bench`): Ray is never a dependency of the
service. It serves the paths of condgen's API that the load benchmark uses, so both get the same requests:

    POST /{name}/sample?class=..&n=..&seed=..     POST /{name}/interpolate (JSON)     POST /{name}/edit (multipart)
    GET  /{name}/_stats  -> {"batches": .., "rows": ..}   (the mean batch size, as condgen's /metrics gives it)

The deployment is written as Ray's batching guide recommends, and given what condgen's queue has: batches
counted in generator rows (batch_size_fn) up to the same MAX_BATCH_ROWS, no wait for a fuller batch
(batch_wait_timeout_s=0, condgen's MAX_WAIT_MS=0), max_ongoing_requests high enough that a replica sees the
whole concurrency, the forward and the PNG encoding in worker threads (off the replica's event loop), the
same torch thread count, and the same forward + uint8 code (app.registry.ServedModel.run) and PNG encoder.

    benchmarks/.venv-ray/bin/python benchmarks/ray_serve_app.py --checkpoint-dir DIR --port 8100
Prints READY once every model answers, then serves until SIGTERM or SIGINT.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ray  # noqa: E402
import torch  # noqa: E402
from ray import serve  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--max-batch-rows", type=int, default=64)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()

    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    from benchmarks.ray_deployment import Generator as deployment  # importable by the workers (PYTHONPATH)

    for path in sorted(args.checkpoint_dir.glob("*.safetensors")):
        app = deployment.options(name=path.stem).bind(str(path), args.max_batch_rows, args.threads, args.device,
                                                     args.dtype)
        serve.run(app, name=path.stem, route_prefix=f"/{path.stem}")
    print("READY", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
