# reenact: `make demo` reenacts examples/ into out/demo.mp4; `make test` runs the test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch/torchvision pins that install from this project's machines' local wheels; override for yours.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.reenact-installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -c "import cv2, mediapipe, torch, torchvision, face_alignment" 
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(BIN)/reenact drive examples/source.png examples/driver.mp4 -o out/demo.mp4 --paste-back --side-by-side --force
	@echo "demo video: out/demo.mp4"

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra

bench: $(STAMP)
	$(BIN)/python bench/bench_rasterizer.py
	$(BIN)/python bench/bench_drive.py
	$(BIN)/python bench/bench_head_warp.py
	$(BIN)/python bench/bench_live.py
	$(BIN)/python bench/bench_score.py
	$(BIN)/python bench/bench_evaluate.py
	$(BIN)/python bench/bench_preprocess.py
	$(BIN)/python bench/bench_pair_read.py
	$(BIN)/python bench/bench_train.py

clean:
	rm -rf out .pytest_cache
