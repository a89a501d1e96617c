#!/usr/bin/python3
"""check_docs.py SOURCE_DIR: every example quoted in docs/clients.md (a code
block after "<!-- example: PATH -->") is exactly the file PATH, so that the
documentation shows the code the build compiles and the tests run."""
import os
import re
import sys

src = sys.argv[1]
doc = open(os.path.join(src, "docs", "clients.md")).read()
found = re.findall(r"<!-- example: (\S+) -->\n```\w*\n(.*?)```", doc, re.S)
bad = [p for p, body in found if open(os.path.join(src, p)).read() != body]
if len(found) < 2 or bad:
    print("docs/clients.md: examples out of date: %s (found %d)" % (bad, len(found)))
    sys.exit(1)
print("docs/clients.md: %d examples match" % len(found))
