#!/usr/bin/env bash
# Regenerates the README's table of supported operations from the code (`codeyard ops`).
set -euo pipefail
cd "$(dirname "$0")/.."
table=$(cargo run -q --bin codeyard -- ops)
python3 - "$table" <<'PY'
import sys, re
table = sys.argv[1] + "\n"
s = open("README.md").read()
b, e = "<!-- ops:begin -->\n", "<!-- ops:end -->"
i, j = s.index(b) + len(b), s.index(e)
open("README.md", "w").write(s[:i] + table + s[j:])
PY
echo "README.md operations table updated"
