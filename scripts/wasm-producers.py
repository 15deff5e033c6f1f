#!/usr/bin/env python3
"""Print the wit-component version a WebAssembly component's own `producers` section names
(the last one in the file: nested core modules carry their own), as `wit-component X.Y.Z`,
or `unknown`. The linker that made the component wrote it, which is how the guest build
checks that the linker it named was the one used. Standard library only.

usage: wasm-producers.py COMPONENT.wasm
"""
import re
import sys

data = open(sys.argv[1], "rb").read()
last = None
for m in re.finditer(rb"\rwit-component([\x01-\x20])", data):
    last = data[m.end():m.end() + m.group(1)[0]].decode(errors="replace")
print(f"wit-component {last}" if last else "unknown")
