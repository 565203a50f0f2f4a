// `make fuzz` (test/run.sh fuzz) entry: the BGP UPDATE fuzz run of test/unit/bgp/fuzz-update.test.ts
// with TABBY_FUZZ_ITERATIONS from the environment (the Makefile sets 2,000,000).
import '../unit/bgp/fuzz-update.test.js';
