#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with valid inputs from the test fixtures, so
# that the fuzzers start from files the readers accept.
set -euo pipefail
cd "$(dirname "$0")"
fixtures=../tests/fixtures
mkdir -p corpus/{wiring_json,upstream_config,safetensors,pt}
python3 - "$fixtures" <<'PY'
import json, pathlib, sys
fixtures = pathlib.Path(sys.argv[1])
out = pathlib.Path("corpus/wiring_json")
for f in sorted((fixtures / "reference").glob("*.json")):
    wiring = json.loads(f.read_text()).get("wiring")
    if wiring is not None:
        (out / f.name).write_text(json.dumps(wiring))
PY
cp "$fixtures"/upstream_config/*.json corpus/upstream_config/
rm -f corpus/upstream_config/*.expected.json
for f in cfc_wired_autoncp_pure cfc_no_backbone ltc_random; do
  cp "$fixtures/reference/$f.safetensors" corpus/safetensors/
done
cp "$fixtures"/pt/*.pt "$fixtures"/pt/views/*.pt corpus/pt/
