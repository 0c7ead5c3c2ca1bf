# icpn — every entry point. `make demo` and `make test` run `setup` first, so a fresh
# Debian 12 machine needs nothing else. See README.md.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBIAN_PACKAGES := iproute2 iputils-ping traceroute tshark mininet ethtool nftables
PYTEST_ARGS ?=

.PHONY: setup system-packages build constants test test-unit test-ptf test-ptf-perf bench demo run lint clean

setup: system-packages $(STAMP)

# Debian packages the tests and topologies use; installed only when missing, and only as root.
system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages: $$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "warning: missing Debian packages ($$missing); run 'sudo make setup' to install them"; \
	  fi; \
	fi

$(STAMP): pyproject.toml control/icpn/bfrt/proto/bfruntime.proto control/icpn/bfrt/proto/stratum_bf.proto
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@# The BfRuntime stubs, from icpn's own proto with the grpcio-tools just installed.
	$(BIN)/python -m icpn.bfrt.stubs >/dev/null
	@# Debian's Mininet is a pure-Python package of Debian's python3 (the same 3.11): link it
	@# into the virtualenv so icpn net can import it, without the rest of Debian's packages.
	@if [ -d /usr/lib/python3/dist-packages/mininet ]; then \
	  ln -sfn /usr/lib/python3/dist-packages/mininet "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/mininet"; fi
	@touch $@

constants: $(STAMP)
	$(BIN)/icpn constants

# Compile every P4 program (the TNA profiles too when bf-p4c is found); exits 2 with the
# reason when p4c is missing.
build: $(STAMP)
	$(BIN)/icpn build

# All tests. BMv2/PTF tests run when p4c and simple_switch_grpc are present, the Tofino
# compile tests when bf-p4c is; each is reported skipped, with the reason, when it is not.
test: setup
	$(BIN)/icpn toolchain
	$(BIN)/icpn build --skip-missing
	$(BIN)/pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-ptf-perf

# The PTF suite again on the performance build of BMv2 with the patches of
# bench/bmv2_perf_patches (bench/build_bmv2_perf.sh), when there is one: the forwarding
# figures of `make bench` are measured on it, so it must forward exactly as the stock build.
PERF_BMV2 ?= $(or $(ICPN_BMV2_PERF),/opt/bmv2-perf/bin/simple_switch_grpc)
test-ptf-perf: setup
	@if [ -x "$(PERF_BMV2)" ]; then \
		echo "PTF on the performance build $(PERF_BMV2)"; \
		ICPN_BMV2="$(PERF_BMV2)" $(BIN)/pytest ptf_tests $(PYTEST_ARGS); \
	else \
		echo "test-ptf-perf: skipped: no performance build at $(PERF_BMV2)" \
			"(bench/build_bmv2_perf.sh makes one)"; \
	fi

test-unit: setup
	$(BIN)/pytest tests $(PYTEST_ARGS)

test-ptf: setup build
	$(BIN)/pytest ptf_tests $(PYTEST_ARGS)

bench: setup build
	$(BIN)/python bench/forwarding.py
	$(BIN)/python bench/elephants.py
	$(BIN)/python bench/adversarial.py
	$(BIN)/python bench/controller.py
	$(BIN)/python bench/failover.py
	$(BIN)/python bench/sender.py
	$(BIN)/python bench/model.py
	$(BIN)/python bench/trace.py
	$(BIN)/python bench/sweep.py
	$(BIN)/python bench/studies.py
	$(BIN)/python bench/degradation.py
	$(BIN)/python bench/studies.py --bmv2 100000
	$(BIN)/python bench/tofino.py

# The data-ingestion topology on BMv2 + Mininet with the controller; Ctrl-C to stop.
run: setup build
	$(BIN)/icpn net up data-ingestion

# The README's first command: the data-ingestion study end to end, on BMv2 + Mininet when
# p4c, BMv2 and root are there, on the reference model otherwise; ends with the report path.
demo: setup
	$(BIN)/icpn study data-ingestion --backend auto

lint: setup
	$(BIN)/ruff check control ptf_tests tests bench conftest.py
	$(BIN)/ruff format --check control ptf_tests tests bench conftest.py
	$(BIN)/mypy

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
