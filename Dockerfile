# condgen: the serving image (default target `serve`) and a training image (target `train`).
#
#   docker build -t condgen .                          # serve: uvicorn app.main:app on 0.0.0.0:8000
#   docker build --target train -t condgen-train .     # train: python -m training ...
#
# torch comes from BASE_IMAGE and is never reinstalled: pip gets the project's other dependencies with
# torch pinned (constraint) to the version the base already has. Any base with python3 (3.11+), pip and
# torch on PATH works: the official PyTorch CUDA runtime images (python in /opt/conda), or a plain Debian
# with torch in a venv (scripts/docker_smoke.sh builds one). Works with BuildKit and the classic builder.
ARG BASE_IMAGE=pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime

FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml deploy/requirements.py /tmp/condgen/
RUN useradd --no-log-init --user-group --uid 10001 --create-home --home-dir /home/condgen \
        --shell /usr/sbin/nologin condgen

# ---------------------------------------------------------------------------------------------------------
# serve: the FastAPI service and the demo checkpoints, no training code or extras.
FROM base AS serve
# pyproject's requirements for the serve extra, torch pinned to the base's build; then torch must be unchanged.
RUN python3 /tmp/condgen/requirements.py serve \
    && python3 -m pip install -r /tmp/condgen/requirements.txt -c /tmp/condgen/constraints.txt \
    && python3 -c "import torch; assert open('/tmp/condgen/constraints.txt').read().split('==')[1].strip() == torch.__version__"
COPY models/ /app/models/
COPY app/ /app/app/
# Every checkpoints/*.safetensors in the build context (.dockerignore lets nothing else in). A volume
# mounted on /app/checkpoints replaces them.
COPY checkpoints/ /app/checkpoints/
ENV PYTHONPATH=/app \
    CONDGEN_CHECKPOINT_DIR=/app/checkpoints \
    CONDGEN_DEVICE=auto
USER 10001:10001
EXPOSE 8000
# Ready once every checkpoint is loaded and warmed up (uvicorn listens only after that).
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
# One process per GPU: the inference queue batches across all of its requests (no --workers).
# On SIGTERM uvicorn stops accepting, finishes open requests, and the app drains its queue.
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--timeout-graceful-shutdown", "30"]

# ---------------------------------------------------------------------------------------------------------
# train: python -m training FAMILY --data SPEC --out checkpoints/NAME.safetensors (the training extras).
FROM base AS train
ARG EXTRAS=train
# pyproject's requirements for EXTRAS, torch pinned to the base's build; then torch must be unchanged.
RUN python3 /tmp/condgen/requirements.py "${EXTRAS}" \
    && python3 -m pip install -r /tmp/condgen/requirements.txt -c /tmp/condgen/constraints.txt \
    && python3 -c "import torch; assert open('/tmp/condgen/constraints.txt').read().split('==')[1].strip() == torch.__version__"
COPY models/ /app/models/
COPY training/ /app/training/
RUN mkdir -p /app/checkpoints /app/runs && chown condgen:condgen /app/checkpoints /app/runs
ENV PYTHONPATH=/app
USER 10001:10001
ENTRYPOINT ["python3", "-m", "training"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------------------
# The default target (the last stage) is serve. The classic builder builds every stage before --target,
# so serve comes before train: `--target serve` (as compose asks) skips the training extras.
FROM serve
