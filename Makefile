# Everything a person repeats. `make test` and `make demo` set up .venv/ themselves on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml dev/pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install setup tools web web-test browser lint format test demo fuzz bench bench-photos bench-fairness bench-size bench-training bench-training-sd21 bench-serving bench-serving-sd21 bench-web bench-pack bench-provenance serve clean gpu-env gpu-artifacts gpu-image

setup: $(STAMP)

$(STAMP): pyproject.toml dev/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[photos,gpu,generate]' -e './dev[check]'
	$(BIN)/python -m pip install --quiet --no-deps nvidia-pytriton==0.7.0
	$(BIN)/python -m pip install --quiet --no-deps invisible-watermark==0.2.0
	# NumPy 1 for Triton's Python-backend stub only (it is built against NumPy 1's ABI): see avatar_dev.local.triton.
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/triton-stub-site numpy==1.26.4
	rm -f $(VENV)/.installed-* && touch $@

# checkov and the SAM CLI pin their own dependencies: each gets a virtual environment of its own.
CHECKOV_VERSION := 3.3.30
SAM_CLI_VERSION := 1.170.0
CHECKOV := $(VENV)/tools/checkov-$(CHECKOV_VERSION)/bin/checkov
SAM := $(VENV)/tools/sam-$(SAM_CLI_VERSION)/bin/sam

$(CHECKOV):
	$(PYTHON) -m venv $(VENV)/tools/checkov-$(CHECKOV_VERSION)
	$(VENV)/tools/checkov-$(CHECKOV_VERSION)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)

$(SAM):
	$(PYTHON) -m venv $(VENV)/tools/sam-$(SAM_CLI_VERSION)
	$(VENV)/tools/sam-$(SAM_CLI_VERSION)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)

tools: $(CHECKOV) $(SAM)

# The project's environment and the two tools' environments do not depend on each other: installed at once.
install:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(MAKE) --no-print-directory --jobs=3 setup tools

# The web app (web/): npm's packages exactly as the lock file says, then the bundle in web/dist (TypeScript checked,
# built by Vite, the API reference page beside it). The local stack serves web/dist at its root.
WEB_STAMP := web/node_modules/.installed-$(shell cksum < web/package-lock.json | cut -d' ' -f1)
WEB_SOURCES := $(shell find web/src web/scripts -type f) web/index.html web/vite.config.ts web/tsconfig.json

$(WEB_STAMP): web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	rm -f web/node_modules/.installed-* && touch $@

web/dist/index.html: $(WEB_STAMP) $(WEB_SOURCES)
	cd web && npm run --silent build

web: web/dist/index.html

# The app's own unit tests (vitest, in Node).
web-test: $(WEB_STAMP)
	cd web && npm test --silent

# Debian's Chromium, which the browser tests drive (Playwright talks to it; no browser download).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$$(test "$$(id -u)" = 0 || echo sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $$(test "$$(id -u)" = 0 || echo sudo) apt-get install -y -qq --no-install-recommends chromium

browser: $(CHROMIUM)

# Template checks: cfn-lint with the serverless rules, checkov (skips and reasons in .checkov.yaml) and
# `sam validate --lint`, which works offline (a region is all it needs). The GPU entry points are type-checked one
# by one (each is a `model.py`, as DJL Serving and Triton name them).
lint: install
	$(BIN)/ruff format --check src services dev tests gpu
	$(BIN)/ruff check src services dev tests gpu
	$(BIN)/mypy
	for model in gpu/training/model.py gpu/triton/*/1/model.py; do $(BIN)/mypy --no-error-summary $$model || exit 1; done
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules --template template.yaml
	$(CHECKOV) --config-file .checkov.yaml --file template.yaml
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --template template.yaml

format: setup
	$(BIN)/ruff format src services dev tests gpu
	$(BIN)/ruff check --fix src services dev tests gpu

# pytest's exit code 5 (no tests ran) is a failure like any other non-zero code. Test files run in parallel, each
# file on one worker (its module fixtures, such as a Triton server, are built once), and every process with one
# OpenMP thread: with more, the workers' torch threads spin waiting for each other (twice the CPU, measured).
test: lint web web-test browser
	OMP_NUM_THREADS=1 $(BIN)/pytest --numprocesses=auto --maxprocesses=4 --dist=loadfile --durations=15

# FACES=<folder> runs the demo on your own 10-12 selfies.
FACES ?= ../shared/faces
demo: setup web browser
	$(BIN)/avatar demo --out build/demo --faces $(FACES)

bench: setup
	$(BIN)/avatar bench intake

# The worst photos within the photo check's limits, each in a fresh process on one core: the slowest verdict and the
# highest peak memory (exits 1 over the 2 s / 600 MB goal).
bench-photos: setup
	$(BIN)/avatar bench photo-limits

# 10,000 mutated photos through the photo check and 10,000 malformed bodies through the API handlers (exit 1 on any
# escape: an exception, a 5xx, an error not in the project's shape); `make test` runs 300 of each.
fuzz: setup
	$(BIN)/avatar fuzz --cases 10000

# On the local stack, one user sends the heaviest allowed requests from four clients while five users send ordinary
# ones: the five must see no error (exits 1 otherwise).
bench-fairness: setup
	$(BIN)/avatar bench fairness

# Unzipped size of the photo-check function's dependencies against Lambda's 250 MB zip limit (downloads from PyPI).
bench-size: setup
	$(BIN)/avatar bench lambda-size

# `avatar train ../shared/faces --base-model tiny` with default options, cold and with cached class images.
bench-training: setup
	$(BIN)/avatar bench training

# Per-step time, peak memory and adapter size on the SD 2.1 architecture (random weights): reference vs ours.
# 512 px and 30 steps on a GPU; 128 px and 6 steps on CPU.
bench-training-sd21: setup
	$(BIN)/avatar bench training --size sd21

# Our serving design (shared base, thin per-user models) against the reference (a pipeline per user), in real Triton:
# cold start, memory per resident user and mixed-user throughput. Tiny with 8 users; SD 2.1 (random weights), 2 users.
bench-serving: setup
	$(BIN)/avatar bench serving --size tiny --users 8

bench-serving-sd21: setup
	$(BIN)/avatar bench serving --size sd21 --users 2

# The web app's first page (index.html, its script and styles), gzip-compressed, against the 150 KB goal.
bench-web: setup web
	$(BIN)/avatar bench web-size

# Marking (XMP, C2PA signing and validation) per image, and whether an invisible watermark survives re-encoding.
bench-provenance: setup
	$(BIN)/avatar bench provenance
	$(BIN)/avatar bench watermark

# The starter pack on the local stack: one user's pack alone, then two at once (time, share of the base's batches).
bench-pack: setup
	$(BIN)/avatar bench pack --users 2

# The local Triton server with the shared tiny base (add --model DIR_OR_TAR to the command to load users' models).
serve: setup
	$(BIN)/avatar serve

# `sam build` runs these for the zip functions (Metadata: BuildMethod: makefile): the base dependencies only.
build-UploadApiFunction build-ModelsApiFunction build-OrchestratorFunction build-TrainingSweeperFunction build-NotifierFunction:
	$(PYTHON) -m pip install --quiet --no-compile . --target "$(ARTIFACTS_DIR)"

build-GenerateApiFunction build-StarterPackFunction:
	$(PYTHON) -m pip install --quiet --no-compile '.[generate]' --target "$(ARTIFACTS_DIR)"

# --- What the SageMaker endpoints load (see docs/deploy.md) --------------------------------------------------------
TRITON_IMAGE ?=
GPU_OUT := build/gpu

# The models' conda-pack environment, built inside the Triton image (Docker, internet).
gpu-env:
	@test -n "$(TRITON_IMAGE)" || { echo "TRITON_IMAGE=<uri> (avatar deploy images --region <region>)"; exit 2; }
	gpu/env/build-env.sh $(TRITON_IMAGE) $(GPU_OUT)/avatar_env.tar.gz

# The LMI code artifact and, once gpu-env has run, the setup model with the environment inside.
gpu-artifacts: setup
	$(BIN)/avatar deploy build --out $(GPU_OUT)

# The Triton image with the environment baked in: IMAGE=<account>.dkr.ecr.<region>.amazonaws.com/avatar-triton:<tag>
gpu-image:
	@test -n "$(TRITON_IMAGE)" -a -n "$(IMAGE)" || { echo "TRITON_IMAGE=<uri> IMAGE=<your ECR uri>"; exit 2; }
	docker build --build-arg TRITON_IMAGE=$(TRITON_IMAGE) -t $(IMAGE) -f gpu/triton/Dockerfile $(GPU_OUT)
	docker push $(IMAGE)

clean:
	rm -rf $(VENV) build web/node_modules web/dist .pytest_cache .mypy_cache .ruff_cache
