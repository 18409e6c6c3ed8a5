"""The benchmarks' own logic (no timing here: the benchmarks themselves never run in the test suite):
percentiles, the ceiling at a fractional batch size, the pass/fail of the issue's criteria, and the
load generator's HTTP client."""
from __future__ import annotations

import asyncio

import pytest
import torch

from benchmarks.compile_speed import RECIPES
from benchmarks.common import batch_sizes, ceiling_rate_at, latency_summary, percentile
from benchmarks.http_client import Connection
from benchmarks.report import criteria
from benchmarks.stargan_penalty_speed import DEMO_FLAGS
from tests.makefile_recipes import makefile_training_commands
from training.cli import build_parser


def test_percentile_interpolates_between_closest_ranks():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 100.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_latency_summary_is_in_milliseconds():
    summary = latency_summary([0.010, 0.020, 0.030])
    assert summary["p50_ms"] == 20.0 and summary["mean_ms"] == 20.0
    assert latency_summary([])["p99_ms"] is None


def test_ceiling_rate_at_a_fractional_batch_interpolates_the_batch_time():
    ms = {1: 10.0, 2: 12.0, 4: 16.0}
    assert ceiling_rate_at(ms, 2) == pytest.approx(2 / 0.012)
    assert ceiling_rate_at(ms, 3) == pytest.approx(3 / 0.014)  # 14 ms between 12 and 16
    assert ceiling_rate_at(ms, 8) == pytest.approx(8 / 0.016)  # clamped to the last measured time


def test_batch_sizes_are_powers_of_two_up_to_the_maximum():
    assert batch_sizes(64) == [1, 2, 4, 8, 16, 32, 64]
    assert batch_sizes(12) == [1, 2, 4, 8, 12]
    assert batch_sizes(1) == [1]


def _point(target, workload, c, images_per_s, p50=10.0, p99=20.0, rows=64.0):
    return {"target": target, "workload": workload, "concurrency": c, "images_per_s": images_per_s,
            "p50_ms": p50, "p99_ms": p99, "mean_batch_rows": rows}


def _paired(workload, c, batch, images_per_s, ms):
    return {"after": "condgen", "workload": workload, "concurrency": c, "batch": batch,
            "images_per_s": images_per_s, "ms_per_batch": ms}


def _result(served16: float, served1: float, unbatched1: float, p50_c1: float, ray16: float):
    return {
        "targets": {"condgen": "", "unbatched": "", "ray": ""}, "concurrency": [1, 64], "max_batch_rows": 64,
        "workloads": ["sample16"],
        "points": [_point("condgen", "sample16", 64, served16), _point("condgen", "sample1", 64, served1),
                   _point("unbatched", "sample1", 64, unbatched1, rows=1.0),
                   _point("condgen", "sample1", 1, 50.0, p50=p50_c1, rows=1.0),
                   _point("ray", "sample16", 64, ray16, p99=30.0), _point("condgen", "sample16", 1, 100.0),
                   _point("ray", "sample16", 1, 90.0, p99=25.0)],
        "paired_ceilings": [_paired("sample16", 64, 64, 1000.0, 64.0), _paired("sample1", 64, 64, 800.0, 80.0),
                            _paired("sample1", 64, 1, 100.0, 10.0), _paired("sample1", 1, 1, 100.0, 10.0)],
    }


def test_criteria_pass_and_fail_on_the_measured_figures():
    good = criteria(_result(950.0, 700.0, 100.0, 12.5, 900.0), None)
    # 95% of the ceiling; 7.0x >= 0.8 x 8.0x; p50 12.5 <= 10 + 3 ms; faster than Ray with a lower p99.
    assert [r["passed"] for r in good] == [True, True, True, True]
    bad = criteria(_result(850.0, 400.0, 100.0, 13.5, 960.0), None)
    # 85% of the ceiling; 4.0x < 0.8 x 8.0x; p50 13.5 > 10 + 3 ms; Ray faster at c=64.
    assert [r["passed"] for r in bad] == [False, False, False, False]
    train = {"ratio_condgen_over_plain": 0.97, "images_per_s": {"condgen": 97.0, "plain": 100.0}}
    assert criteria({"targets": {}, "concurrency": [1], "max_batch_rows": 1}, train)[0]["passed"] is False


async def _serve_once(responses: list[bytes]) -> tuple[asyncio.AbstractServer, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for response in responses:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            writer.write(response)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_http_client_reads_content_length_and_chunked_bodies_on_one_connection():
    async def scenario() -> list[tuple[int, bytes]]:
        server, port = await _serve_once([
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        ])
        conn = Connection("127.0.0.1", port)
        try:
            return [await conn.request("POST", "/x", body=b"12345"), await conn.request("GET", "/y")]
        finally:
            await conn.close()
            server.close()

    assert asyncio.run(scenario()) == [(200, b"hello"), (503, b"abcde")]


def test_precision_layout_pixel_difference_is_zero_for_the_same_model_and_counts_levels():
    import copy

    import models
    from benchmarks.precision_layout import pixel_difference

    arch = dict(num_classes=3, image_size=28, channels=1, latent_dim=8, g_width=8, d_width=8)
    G = models.build("acgan", **arch).eval()
    checkpoint = type("Checkpoint", (), {"family": "acgan", "arch": arch})()
    same = pixel_difference(checkpoint, G, copy.deepcopy(G), torch.float32, torch.device("cpu"))
    assert same == {"mean_levels": 0.0, "max_levels": 0}
    halved = pixel_difference(checkpoint, G, copy.deepcopy(G).to(torch.bfloat16), torch.bfloat16, torch.device("cpu"))
    assert 0 <= halved["mean_levels"] <= halved["max_levels"] <= 255 and halved["max_levels"] > 0


# Options that do not change what one training step costs: the benchmarks leave them out of their recipes.
_SCHEDULE_AND_IO = {"data", "out", "steps", "sample_every", "save_every", "resume", "lr_decay_start", "compile"}


def _step_options(argv: list[str], leave_out: set[str] = _SCHEDULE_AND_IO) -> dict:
    """The training command's parsed options (its own parser), less those that do not shape a step."""
    args = build_parser().parse_args([*argv, "--data", "d", "--out", "x.safetensors"] if "--data" not in argv
                                     else argv)
    return {k: v for k, v in vars(args).items() if k not in leave_out}


def test_the_speed_benchmarks_train_the_makefiles_demo_recipes():
    """The benchmarks restate the demo recipes' flags (to build a Trainer in-process); this catches them drifting
    from the Makefile, which trains the demos."""
    stargan_first, stargan_tail = makefile_training_commands("train-stargan")
    (cgan,) = makefile_training_commands("train-cgan")
    expected = {"stargan": stargan_first, "stargan-tail": stargan_tail, "cgan": cgan}
    # the compile benchmark times each recipe eager, compiled and compiled in bfloat16 (its VARIANTS), whichever
    # the Makefile trains the demo with
    variants = _SCHEDULE_AND_IO | {"cpu_bf16"}
    for recipe, made in expected.items():
        assert _step_options(RECIPES[recipe], variants) == _step_options(made, variants), recipe
    # the penalty benchmark's flags are the first stage's without the penalty interval it varies
    leave_out = _SCHEDULE_AND_IO | {"penalty_every"}
    assert _step_options(["stargan", *DEMO_FLAGS], leave_out) == _step_options(stargan_first, leave_out)
