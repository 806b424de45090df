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

# The suite runs in TEST_WORKERS processes (pytest-xdist), one test file to each, with one compute
# thread per process: most of the tests' work (MediaPipe, decoding, starting the CLI) is one thread
# anyway, and torch's two threads per process fought over two cores (11 min on 2 cores, against
# 17.5 min serially). TEST_WORKERS=0 runs it in one process with torch's default threads.
TEST_WORKERS ?= 2
ifeq ($(TEST_WORKERS),0)
TEST_RUN := $(BIN)/python -m pytest -q -ra
else
TEST_RUN := OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile
endif

test: $(STAMP)
	$(TEST_RUN)

bench: $(STAMP)
	$(BIN)/python bench/bench_rasterizer.py
	$(BIN)/python bench/bench_drive.py
	$(BIN)/python bench/bench_head_warp.py
	$(BIN)/python bench/bench_large_photo.py
	$(BIN)/python bench/bench_live.py
	$(BIN)/python bench/bench_score.py
	$(BIN)/python bench/bench_evaluate.py
	$(BIN)/python bench/bench_preprocess.py
	$(BIN)/python bench/bench_pair_read.py
	$(BIN)/python bench/bench_train.py

clean:
	rm -rf out .pytest_cache
