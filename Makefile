# The two commands of the README:
#   make test   installs missing Debian packages, builds, runs the whole test suite
#   make demo   installs missing Debian packages, builds, and runs `segment demo`
#               (synthetic data -> a ResNet-50 FCN trained from scratch -> mIOU,
#               a saved model and prediction overlays in ./demo)
# Everything else here is a helper for those two.

SHELL := /bin/bash
DEBIAN_PACKAGES := libopenblas-dev liblapacke-dev libpng-dev libjpeg-dev libarchive-dev pkg-config openmpi-bin libopenmpi-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SWIFT ?= swift
# Release mode: the kernels are 10-100x slower in debug builds, and the tests
# exercise real network shapes. @testable import works in release test builds.
CONFIGURATION ?= release

.PHONY: test demo deps build bench fuzz clean

# Where `make demo` writes data/, model/ and predictions/.
DEMO_OUTPUT ?= demo

deps:
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "error: swift not found on PATH (need Swift 6.0 or newer, https://www.swift.org/install/linux/)"; exit 1; }

build: deps
	$(SWIFT) build -c $(CONFIGURATION)

test: deps
	$(SWIFT) test -c $(CONFIGURATION)

demo: deps
	$(SWIFT) build -c release --product segment
	.build/release/segment demo --output $(DEMO_OUTPUT)

bench: deps
	$(SWIFT) run -c release segment bench conv

# libFuzzer + AddressSanitizer on every reader of untrusted bytes, FUZZ_SECONDS
# each (Docs/fuzzing.md); exits non-zero on any crash. Targets: FUZZ_TARGETS.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) SWIFT=$(SWIFT) Scripts/fuzz.sh $(FUZZ_TARGETS)

clean:
	rm -rf .build Fuzz/.build
