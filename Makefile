# condgen: every target installs what it needs, so each works on a fresh machine with Python 3.11 and pip.
PYTHON ?= python3
# The local CPU build on this machine; on a GPU host run `make install TORCH_SPEC=` to keep its own torch.
TORCH_SPEC ?= torch==2.13.0
STEPS ?= 9000

.PHONY: install install-dev test demo train-acgan train-cgan judge score clean

install:
	$(PYTHON) -m pip install -q $(TORCH_SPEC) -e '.[serve,train]'

install-dev:
	$(PYTHON) -m pip install -q $(TORCH_SPEC) -e '.[serve,train,test]'

test: install-dev
	$(PYTHON) -m pytest

# Until the service lands, the main job: a grid of sneakers from the demo ACGAN checkpoint alone.
demo: install
	$(PYTHON) -m training generate checkpoints/acgan.safetensors --class sneaker -n 16 --seed 7 --out grid.png

# The demo checkpoints (see checkpoints/README.md for the measured wall time and quality).
train-acgan: install
	$(PYTHON) -m training acgan --data fashion-mnist --out checkpoints/acgan.safetensors --steps $(STEPS) \
		--g-width 32 --d-width 32 --sample-every 1000 --save-every 1000 --seed 0

train-cgan: install
	$(PYTHON) -m training cgan --data fashion-mnist --out checkpoints/cgan.safetensors --steps $(STEPS) \
		--g-width 32 --d-width 32 --sample-every 1000 --save-every 1000 --seed 0

judge: install
	$(PYTHON) -m training judge --data fashion-mnist --out checkpoints/judges/fashion-mnist.safetensors

score: install
	$(PYTHON) -m training score checkpoints/acgan.safetensors --judge checkpoints/judges/fashion-mnist.safetensors
	$(PYTHON) -m training score checkpoints/cgan.safetensors --judge checkpoints/judges/fashion-mnist.safetensors

clean:
	rm -rf runs .pytest_cache grid.png
