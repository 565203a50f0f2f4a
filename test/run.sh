#!/usr/bin/env bash
# Runs tabby's tap suites from the compiled tree (dist/test) and ends with one plain line:
#   N passed, N failed, N skipped
# Usage: test/run.sh [unit|integration|interop|fuzz ...]   (default: unit integration interop)
# (a suite is any directory under dist/test; TABBY_TEST_LOG: where the TAP output goes, default .tap/last-run.tap)
set -uo pipefail
cd "$(dirname "$0")/.."
suites=("$@"); [ ${#suites[@]} -eq 0 ] && suites=(unit integration interop)
files=()
for s in "${suites[@]}"; do
  [ -d "dist/test/$s" ] && while IFS= read -r f; do files+=("$f"); done < <(find "dist/test/$s" -name '*.test.js' | sort)
done
if [ ${#files[@]} -eq 0 ]; then echo "no test files under dist/test/{${suites[*]}} (run make build)"; echo "0 passed, 0 failed, 0 skipped"; exit 1; fi
mkdir -p .tap
log=${TABBY_TEST_LOG:-.tap/last-run.tap}
# Every test file names what it creates in the kernel and /tmp after its own process
# (test/helpers/run-tag.ts): one tag for the whole run (TABBY_TEST_RUN, for a file run by hand) made
# files running at once create, and delete, the same namespaces.
unset TABBY_TEST_RUN
export TAP=1
node_modules/.bin/tap --disable-coverage --reporter=tap --jobs=2 --timeout=600 "${files[@]}" | tee "$log"
rc=${PIPESTATUS[0]}
# tap's final summary comment: "# { total: N, pass: N, fail: N, skip: N, todo: N }" (absent keys are 0)
node -e '
  const text = require("fs").readFileSync(process.argv[1], "utf8");
  const m = [...text.matchAll(/^# \{ total: .*\}$/gm)].pop();
  const get = (k) => { const r = m && new RegExp(k + ": (\\d+)").exec(m[0]); return r ? Number(r[1]) : 0; };
  if (!m) { console.log("0 passed, 1 failed, 0 skipped"); process.exit(0); }
  console.log(`${get("pass")} passed, ${get("fail")} failed, ${get("skip") + get("todo")} skipped`);
' "$log"
exit $rc
