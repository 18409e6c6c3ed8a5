"""Service settings: CONDGEN_* environment variables read through pydantic-settings (DESIGN.md, Settings)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import torch
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONDGEN_", extra="ignore")

    checkpoint_dir: Path = Path("checkpoints")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    max_batch_rows: int = Field(64, ge=1, le=65536)
    max_wait_ms: float = Field(0.0, ge=0.0)
    max_queue_rows: int = Field(4096, ge=1)
    request_timeout_s: float = Field(30.0, gt=0.0)
    max_samples: int = Field(64, ge=1)
    max_upload_bytes: int = Field(8 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(4096 * 4096, ge=1)
    api_key: SecretStr | None = None
    # Browser origins allowed to call the API from other sites (CORS); none by default. Comma-separated.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # When true, every forward runs at exactly max_batch_rows rows (padded): kernels pick their algorithm
    # by batch size, so otherwise the last float bits of a row can depend on its company. Off by default:
    # a lone request would pay for a full batch (15x the latency of the demo ACGAN on a CPU, benchmarks/README.md).
    pad_batches: bool = False
    # Threads of a forward on the CPU; 0 chooses the usable CPUs less one (see app/threads.py).
    torch_threads: int = Field(0, ge=0)
    # FastAPI's native OpenTelemetry (spans, HTTP metrics, error logs to the global providers). Off by
    # default: even with no provider configured it looks the providers up on every request, about 5% of
    # the event loop's time serving small images (benchmarks/README.md). /metrics (Prometheus) is separate.
    opentelemetry: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        value = value.strip().lower()
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_no_key(cls, value: object) -> object:
        # `CONDGEN_API_KEY=` (as a compose file leaves it) means no key, never "the empty key".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    def torch_device(self) -> torch.device:
        """`auto` means the first GPU when there is one, else the CPU."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)
