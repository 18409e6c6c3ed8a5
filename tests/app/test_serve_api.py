"""GET /, /models, /models/{name}, /healthz, /readyz, /metrics, OpenAPI; the registry and the settings."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import models
from app.main import create_app
from app.settings import Settings
from serve_helpers import ATTRIBUTES, CLASSES


def test_index_points_to_docs(client):
    r = client.get("/")
    assert r.status_code == 200 and 'href="/docs"' in r.text


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_models_list(client):
    r = client.get("/models")
    assert r.status_code == 200
    by_name = {m["name"]: m for m in r.json()}
    assert set(by_name) == {"acgan", "cgan", "stargan"}
    a = by_name["acgan"]
    assert a["family"] == "acgan" and a["classes"] == CLASSES and a["image_size"] == 28 and a["channels"] == 1
    assert a["latent_dim"] == 16 and a["training"] == {"dataset": "random", "steps": 0} and a["status"] == "ready"
    s = by_name["stargan"]
    assert s["attributes"] == ATTRIBUTES and s["attribute_groups"] == [["light", "dark"]]
    assert s["image_size"] == 16 and s["channels"] == 3 and s["latent_dim"] is None and "classes" not in s


def test_model_detail(client):
    r = client.get("/models/cgan")
    assert r.status_code == 200 and r.json()["family"] == "cgan" and r.json()["operations"] == ["sample", "interpolate"]
    assert client.get("/models/nope").status_code == 404


@pytest.fixture
def mixed_dir(tmp_path, checkpoint_dir):
    """The good checkpoints, plus bad files of several kinds, plus one in a subfolder (not served)."""
    shutil.copy(checkpoint_dir / "acgan.safetensors", tmp_path / "good.safetensors")
    (tmp_path / "garbage.safetensors").write_bytes(b"not a checkpoint")
    g = models.build("acgan", num_classes=2, image_size=16, g_width=8, latent_dim=8)
    models.save_checkpoint(tmp_path / "mismatch.safetensors", g, "acgan",
                           dict(num_classes=2, image_size=16, g_width=16, latent_dim=8), {}, classes=["a", "b"])
    models.save_checkpoint(tmp_path / "noclasses.safetensors", g, "acgan",
                           dict(num_classes=2, image_size=16, g_width=8, latent_dim=8), {})
    (tmp_path / "sub").mkdir()
    shutil.copy(checkpoint_dir / "cgan.safetensors", tmp_path / "sub" / "nested.safetensors")
    (tmp_path / "notes.txt").write_text("not a checkpoint either, and not *.safetensors")
    return tmp_path


def test_bad_files_are_skipped_with_their_reason(make_client, mixed_dir, caplog):
    client = make_client(mixed_dir)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["models"] == ["good"]
    assert set(body["skipped"]) == {"garbage.safetensors", "mismatch.safetensors", "noclasses.safetensors"}
    assert "not a safetensors file" in body["skipped"]["garbage.safetensors"]
    assert "do not fit arch" in body["skipped"]["mismatch.safetensors"]
    assert "classes" in body["skipped"]["noclasses.safetensors"]
    listed = {m["name"]: m for m in client.get("/models").json()}
    assert listed["garbage"]["status"] == "skipped" and "reason" in listed["garbage"]
    assert "nested" not in listed  # top level only
    assert any("skipping" in rec.message and "garbage" in rec.message for rec in caplog.records)
    r = client.post("/garbage/sample", params={"class": 0})
    assert r.status_code == 404 and "was not loaded" in r.json()["detail"]
    assert client.post("/good/sample", params={"class": "sneaker"}).status_code == 200


def test_readyz_is_503_without_models(make_client, tmp_path):
    client = make_client(tmp_path / "missing")
    r = client.get("/readyz")
    assert r.status_code == 503 and "no model" in r.json()["detail"]
    assert client.get("/healthz").status_code == 200
    assert client.get("/models").json() == []


@pytest.mark.parametrize("pad, rows", [(True, 8), (False, 1)])
def test_warm_up_ran_at_the_batch_shape(make_client, checkpoint_dir, monkeypatch, pad, rows):
    """Padded, every forward has max_batch_rows rows, so the warm-up does too; unpadded, one row."""
    from app import registry
    seen = []
    original = registry.ServedModel.run

    def spy(self, batch):
        seen.append((self.name, next(iter(batch.values())).shape[0]))
        return original(self, batch)

    monkeypatch.setattr(registry.ServedModel, "run", spy)
    make_client(max_batch_rows=8, pad_batches=pad)
    assert sorted(seen) == [("acgan", rows), ("cgan", rows), ("stargan", rows)]


def test_metrics_report_requests_queue_and_batches(client):
    for seed in range(3):
        assert client.post("/acgan/sample", params={"class": 1, "n": 2, "seed": seed}).status_code == 200
    client.post("/acgan/sample", params={"class": "nope"})
    text = client.get("/metrics").text
    assert 'condgen_request_seconds_count{method="POST",route="/{name}/sample",status="200"} 3.0' in text
    assert 'condgen_request_seconds_count{method="POST",route="/{name}/sample",status="422"} 1.0' in text
    assert 'condgen_batch_rows_sum{model="acgan"} 6.0' in text
    assert 'condgen_batch_rows_count{model="acgan"} 3.0' in text
    assert 'condgen_rows_total{model="acgan"} 6.0' in text
    assert 'condgen_queued_rows{model="acgan"} 0.0' in text
    assert 'condgen_batch_seconds_count{model="acgan"} 3.0' in text
    assert 'condgen_jobs_total{model="acgan",outcome="ok"} 3.0' in text


def test_openapi_has_an_example_for_each_endpoint(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/models", "/models/{name}", "/healthz", "/readyz", "/{name}/sample", "/{name}/interpolate",
                 "/{name}/edit"):
        operation = json.dumps(paths[path])
        assert "example" in operation or "InterpolateRequest" in operation or "Body_edit" in operation, path
    sample = paths["/{name}/sample"]["post"]
    assert {p["name"]: p["schema"].get("examples") for p in sample["parameters"]}["class"] == ["sneaker"]
    assert "image/png" in sample["responses"]["200"]["content"]
    body = spec["components"]["schemas"]["InterpolateRequest"]
    assert body["examples"][0]["from"] == {"class": "sneaker", "seed": 7}
    edit_schema = json.dumps(spec["components"]["schemas"])
    assert '{\\"smiling\\": 1}' in edit_schema


def test_settings_from_environment(monkeypatch, tmp_path, checkpoint_dir):
    monkeypatch.setenv("CONDGEN_CHECKPOINT_DIR", str(checkpoint_dir))
    monkeypatch.setenv("CONDGEN_MAX_BATCH_ROWS", "5")
    monkeypatch.setenv("CONDGEN_MAX_SAMPLES", "3")
    monkeypatch.setenv("CONDGEN_DEVICE", "CPU")
    s = Settings()
    assert s.checkpoint_dir == checkpoint_dir and s.max_batch_rows == 5 and s.device == "cpu"
    assert s.torch_device() == torch.device("cpu") and s.dtype == "float32"
    monkeypatch.setenv("CONDGEN_DEVICE", "tpu")
    with pytest.raises(ValueError, match="device must be"):
        Settings()
    monkeypatch.setenv("CONDGEN_DEVICE", "auto")
    from fastapi.testclient import TestClient
    with TestClient(create_app()) as client:
        assert client.app.state.services.queue.max_batch_rows == 5
        assert client.post("/acgan/sample", params={"class": 1, "n": 4}).status_code == 422


def test_defaults():
    s = Settings(_env_file=None)
    assert str(s.checkpoint_dir) == "checkpoints" and s.device == "auto" and s.max_wait_ms == 0


def test_bfloat16_serves(make_client):
    client = make_client(dtype="bfloat16")
    model = client.get("/models/acgan").json()
    assert model["dtype"] == "bfloat16"
    assert client.post("/acgan/sample", params={"class": 1, "seed": 1}).status_code == 200


def test_arch_defaults_left_out_of_the_checkpoint_are_filled_in(make_client, tmp_path):
    """models.build fills in defaults (latent_dim 128, channels 1); a checkpoint's arch may omit them."""
    arch = dict(num_classes=2, image_size=16, g_width=8)
    models.save_checkpoint(tmp_path / "short.safetensors", models.build("acgan", **arch), "acgan", arch, {},
                           classes=["a", "b"])
    client = make_client(tmp_path)
    info = client.get("/models/short").json()
    assert info["latent_dim"] == 128 and info["channels"] == 1 and info["image_size"] == 16
    assert client.post("/short/sample", params={"class": "b", "n": 2}).status_code == 200
