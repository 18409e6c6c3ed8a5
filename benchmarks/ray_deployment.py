"""The Ray Serve deployment of benchmarks/ray_serve_app.py (see there). A module of its own: Ray pickles a
deployment class when it is decorated, and a class defined in __main__ would be pickled by value."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import torch
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ROOT = Path(__file__).resolve().parents[1]


def class_names(model) -> list[str]:
    """The model's classes. Not read inside the class's methods: Serve pickles the deployment class by value,
    and cloudpickle then ships every `torch.<name>` that a method using torch also names, and `classes`
    would pick torch.classes, which cannot be pickled."""
    return list(model.classes or [])


def rows_of(items: list[dict[str, torch.Tensor]]) -> int:
    return sum(int(next(iter(item.values())).shape[0]) for item in items)


@serve.deployment(max_ongoing_requests=4096, ray_actor_options={"num_cpus": 0})
class Generator:
    def __init__(self, path: str, max_batch_rows: int, threads: int, device: str, dtype: str):
        sys.path.insert(0, str(ROOT))
        from app.registry import load_one

        torch.set_num_threads(threads)  # Ray sets OMP_NUM_THREADS=1 in its workers; use what condgen uses
        dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                           ("cpu" if device == "auto" else device))
        self.model = load_one(Path(path), dev, getattr(torch, dtype), 1)
        self.generate.set_max_batch_size(max_batch_rows)
        self.batches = 0
        self.rows = 0
        self.class_names = class_names(self.model)

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.0, batch_size_fn=rows_of)
    async def generate(self, items: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
        sizes = [int(next(iter(item.values())).shape[0]) for item in items]
        batch = {k: torch.cat([item[k] for item in items]) for k in items[0]}
        images = await asyncio.to_thread(self.model.run, batch)
        self.batches += 1
        self.rows += sum(sizes)
        return list(torch.split(images, sizes))

    async def __call__(self, request: Request) -> Response:
        from app import codecs

        path = request.url.path.rstrip("/")
        if path.endswith("/_stats"):
            return JSONResponse({"batches": self.batches, "rows": self.rows})
        if path.endswith("/sample"):
            rows, fmt_args = self._sample_rows(request.query_params), ()
        elif path.endswith("/interpolate"):
            rows, steps = self._interpolate_rows(await request.json())
            fmt_args = (steps,)
        elif path.endswith("/edit"):
            rows = await self._edit_rows(request)
            fmt_args = (1,)
        else:
            return JSONResponse({"detail": "not found"}, status_code=404)
        images = await self.generate(rows)
        data = await asyncio.to_thread(codecs.encode_grid, images, "png", *fmt_args)
        return Response(data, media_type="image/png")

    def _one_hot(self, index: int, n: int) -> torch.Tensor:
        y = torch.zeros(n, len(self.class_names))
        y[:, index] = 1.0
        return y

    def _sample_rows(self, query) -> dict[str, torch.Tensor]:
        from models import seeded_latents

        n, seed = int(query.get("n", 1)), int(query.get("seed", 0))
        index = self.class_names.index(query["class"])
        return {"z": seeded_latents(seed, n, self.model.latent_dim), "y": self._one_hot(index, n)}

    def _interpolate_rows(self, body: dict) -> tuple[dict[str, torch.Tensor], int]:
        from models import lerp, seeded_latents, slerp

        classes, d, steps = self.class_names, self.model.latent_dim, int(body["steps"])
        za = seeded_latents(int(body["from"]["seed"]), 1, d)[0]
        zb = seeded_latents(int(body["to"]["seed"]), 1, d)[0]
        t = torch.linspace(0.0, 1.0, steps)
        z = (slerp if body.get("method", "slerp") == "slerp" else lerp)(za, zb, t)
        ya = self._one_hot(classes.index(body["from"]["class"]), 1)[0]
        yb = self._one_hot(classes.index(body["to"]["class"]), 1)[0]
        return {"z": z.contiguous(), "y": lerp(ya, yb, t).contiguous()}, steps

    async def _edit_rows(self, request: Request) -> dict[str, torch.Tensor]:
        from app import codecs

        form = await request.form()
        data = await form["image"].read()
        names = self.model.attributes or []
        source = json.loads(form.get("source") or "{}")
        targets = json.loads(form.get("attributes") or "{}")
        strength = float(form.get("strength") or 1.0)
        src = torch.tensor([float(source.get(a, 0.0)) for a in names])
        trg = src.clone()
        for key, value in targets.items():
            trg[names.index(key)] = float(value)
        for group in self.model.checkpoint.attribute_groups:  # one member of a group named: the others off
            if any(a in targets for a in group):
                for a in group:
                    if a not in targets:
                        trg[names.index(a)] = 0.0
        x = await asyncio.to_thread(codecs.decode_upload, data, self.model.image_size, self.model.channels,
                                    4096 * 4096)
        return {"x": x, "c": (src + strength * (trg - src)).unsqueeze(0)}
