# tabby — build, test, lab, benchmarks. `make deps test` is what CI runs (see .ci/run).
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

# Debian packages the tests and the lab use: real BGP peers (BIRD 2, GoBGP, FRR), a real etcd, the CNI
# reference plugins (portmap programs iptables), nft for natOutgoing, `ip`/ping for tests to look.
DEB_PACKAGES := iproute2 iptables nftables iperf3 bird2 gobgpd frr etcd-server etcd-client \
                containernetworking-plugins iputils-ping procps openssl

.PHONY: deps deps-apt deps-npm build fmt lint test test-unit test-integration test-interop lab lab-down bench fuzz clean stage install uninstall deb

deps: deps-apt deps-npm

deps-apt:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# Debian starts these services on install; tabby's tests start their own instances.
	@-systemctl stop bird frr gobgpd etcd >/dev/null 2>&1 || true

deps-npm:
	npm ci --no-audit --no-fund

# The modules in dist/, then the one-file tabby-node every launcher runs (dist/tabby-node.cjs, deploy/bundle.mjs).
build:
	tsc -p .
	node deploy/bundle.mjs

# Formatter and linter (Biome, biome.json). `make test` checks both (test/unit/house/lint.test.ts).
fmt:
	biome format --write
	biome lint --write

lint:
	biome ci --error-on-warnings

# The whole suite: unit (no root), integration (root, netns), interop (BIRD/GoBGP/FRR), tap under the hood.
# Ends with one line: "N passed, N failed, N skipped".
test: build
	./test/run.sh

test-unit: build
	./test/run.sh unit

test-integration: build
	./test/run.sh integration

test-interop: build
	./test/run.sh interop

# A fresh lab each time: an earlier one (same tabby-lab-* names) is taken down first.
lab: build
	@node dist/src/cli/main.js lab down >/dev/null 2>&1 || true
	node dist/src/cli/main.js lab up --nodes 3
	node dist/src/cli/main.js lab status

lab-down:
	node dist/src/cli/main.js lab down

# Every benchmark, its output also in test/bench/results/bench.log; then the report (test/bench/report.ts):
# test/bench/results/report.md + chart.svg, and (full runs) README's table. QUICK=1: small N, one run,
# only the benchmarks that have a quick mode (they read BENCH_QUICK) — under 3 minutes.
bench: build
	@mkdir -p test/bench/results; : > test/bench/results/bench.log
	@for b in dist/test/bench/*.js; do \
	  case $$b in */report*.js) continue;; esac; \
	  if [ -n "$(QUICK)" ] && ! grep -q BENCH_QUICK $$b; then echo "== $$b: no quick mode, skipped (QUICK=1)" | tee -a test/bench/results/bench.log; continue; fi; \
	  echo "== $$b" | tee -a test/bench/results/bench.log; \
	  BENCH_QUICK=$(QUICK) node $$b 2>&1 | tee -a test/bench/results/bench.log; \
	  [ $${PIPESTATUS[0]} -eq 0 ] || exit 1; \
	done
	node dist/test/bench/report.js $(if $(QUICK),,--readme) test/bench/results/bench.log


fuzz: build
	TABBY_FUZZ_ITERATIONS=2000000 ./test/run.sh fuzz

# --- installing on a host (root; see README "Install on a host with systemd") ---
# make install [PREFIX=/usr/local] [DESTDIR=] [CNI=1]: the app in $(APPDIR) (production node_modules and the
# native addon), tabby-node and tabbyctl in $(PREFIX)/bin, the unit, /etc/tabby/tabby-node.env (an existing
# one is kept), bash/zsh completion, with CNI=1 the CNI plugin + conflist; files listed in
# $(TABBY_HOME)/installed-files. make uninstall removes those; PURGE=1 also changed settings and the datastore.
PREFIX ?= /usr/local
DESTDIR ?=
TABBY_HOME ?= /opt/tabby
APPDIR ?= $(TABBY_HOME)/app
UNITDIR ?= /etc/systemd/system
CNI ?= 0
INSTALL_VARS = DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' TABBY_HOME='$(TABBY_HOME)' APPDIR='$(APPDIR)' UNITDIR='$(UNITDIR)' CNI='$(CNI)' \
  $(foreach v,BINDIR SYSCONFDIR STATEDIR BASH_COMPLETIONDIR ZSH_COMPLETIONDIR CNI_BIN_DIR CNI_NET_DIR NODE PURGE STAGE,$(if $($(v)),$(v)='$($(v))'))

# npm ci only when node_modules is missing (a fresh clone: make install alone works).
node_modules/.package-lock.json:
	npm ci --no-audit --no-fund

stage: node_modules/.package-lock.json build
	$(INSTALL_VARS) deploy/host/install.sh stage

install: stage
	$(INSTALL_VARS) deploy/host/install.sh install

uninstall:
	$(INSTALL_VARS) deploy/host/install.sh uninstall

# A Debian package of the same files (PREFIX=/usr, unit in /lib/systemd/system): $(DEB_DIR)/tabby_<version>_<arch>.deb
# (default .stage/); dpkg -i it, dpkg --purge tabby removes it with its settings and datastore.
deb: stage
	STAGE='$(STAGE)' DEB_DIR='$(DEB_DIR)' deploy/host/deb.sh

clean:
	rm -rf dist src/native/build .tap .stage
