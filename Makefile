# tabby — build, test, lab, benchmarks. `make deps test` is what CI runs (see .ci/run).
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

# Debian packages the tests and the lab use: real BGP peers (BIRD 2, GoBGP), a real etcd, the CNI
# reference plugins (portmap programs iptables), nft for natOutgoing, `ip`/ping for tests to look.
DEB_PACKAGES := iproute2 iptables nftables bird2 gobgpd etcd-server etcd-client \
                containernetworking-plugins iputils-ping procps openssl

.PHONY: deps deps-apt deps-npm build test test-unit test-integration test-interop lab lab-down bench fuzz clean

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

build:
	tsc -p .

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

bench: build
	@for b in dist/test/bench/*.js; do echo "== $$b"; node $$b || exit 1; done


fuzz: build
	TABBY_FUZZ_ITERATIONS=2000000 ./test/run.sh fuzz

clean:
	rm -rf dist src/native/build .tap
