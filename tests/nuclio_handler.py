"""Run a generated Nuclio handler for real with nuclio-sdk's test platform.

usage: nuclio_handler.py FUNCTION_DIR HOST_URL REQUEST_JSON_FILE
Prints one line "RESULT <json>" per body flavour (dict as Nuclio parses JSON, raw bytes):
{"flavour": ..., "status": ..., "body": <parsed JSON>}.
"""
import importlib.util
import json
import os
import sys

import nuclio_sdk
import nuclio_sdk.test

function_dir, host_url, request_file = sys.argv[1:4]
os.environ["CVAT_WASM_HOST_URL"] = host_url
spec = importlib.util.spec_from_file_location("main", os.path.join(function_dir, "main.py"))
main = importlib.util.module_from_spec(spec)
sys.modules["main"] = main  # nuclio-sdk finds init_context through the module
spec.loader.exec_module(main)

raw = open(request_file, "rb").read()
platform = nuclio_sdk.test.Platform()
for flavour, body in (("dict", json.loads(raw)), ("bytes", raw)):
    event = nuclio_sdk.Event(body=body, content_type="application/json", method="POST", path="/")
    response = platform.call_handler(main.handler, event)
    print("RESULT " + json.dumps({"flavour": flavour, "status": response.status_code, "body": json.loads(response.body)}))
