#!/usr/bin/env bash
# Installs what Cầu's tests need on a fresh Debian machine, then runs every test.
#
#   scripts/test.sh
#
# What it installs: Debian's chromium (the real browser of the browser tests), iptables
# (lossy lines in the monitoring tests) and the npm packages of tests/browser (playwright-core, which drives it and downloads nothing).
# The tests then run inside a fresh network namespace with only loopback, so no test
# packet can leave the machine; without root it runs them in the normal namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1
  fi
}

if ! command -v chromium >/dev/null; then
  echo "== installing Debian's chromium"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# Lossy, delayed and cut lines in the monitoring tests: iptables' statistic match and
# NFQUEUE in the test's own namespace (this kernel has no netem). tc (iproute2) is already there.
if ! command -v iptables-legacy >/dev/null; then
  echo "== installing iptables"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null
fi

if ! command -v node >/dev/null; then
  echo "== installing Node.js"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

echo "== installing the browser-test driver (playwright-core)"
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

echo "== building"
cargo build --workspace --all-targets --locked

echo "== running every test"
# The end-to-end scenarios (the `scenarios` test binary) run one at a time: several time
# media on a two-core machine. Unit tests run in parallel. Both commands select the whole
# workspace, so dependencies keep the features of the build above and are not rebuilt.
# `set -e` does not reach a function run by `bash -c` below: each step stops the run itself.
run_tests() {
  cargo test --workspace --locked --offline --lib --bins "$@" || return
  RUST_TEST_THREADS=1 cargo test --workspace --locked --offline --test scenarios "$@" || return
  # The load-test tool keeps working: a 10-site all-hands meeting in simulcast for 10 s
  # (about 25 s), on the webrtc-rs clients, then on the light clients (about 20 s).
  # No performance assertion; it fails only if media does not flow (docs/benchmarks.md).
  ./target/debug/cau-load all-hands --communes 8 --seconds 10 --baseline-pairs 1 --layers 3 || return
  ./target/debug/cau-load all-hands --communes 8 --seconds 10 --baseline-pairs 1 --layers 3 \
    --client light
}
if [ "$(id -u)" -eq 0 ] && unshare -n true 2>/dev/null; then
  # A fresh network namespace: loopback only, nothing reaches any other host.
  export -f run_tests
  unshare -n bash -c 'ip link set lo up && run_tests "$@"' run_tests "$@"
else
  echo "(not root: running the tests in the normal network namespace)"
  run_tests "$@"
fi
