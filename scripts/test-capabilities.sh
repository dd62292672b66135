#!/usr/bin/env bash
# The bit-sensitive tests (marker `bits`) again under the CPU kernels of other machines.
#
# torch dispatches its CPU kernels per machine (ATEN_CPU_CAPABILITY: default < avx2 < avx512 on x86-64), and a
# vectorised kernel can round a tensor's tail differently from its body, so a result exact here may not be on a
# machine of another capability. This runs those tests under every capability below this CPU's own (each one it
# can execute): `default` everywhere, `avx2` too on an AVX-512 machine.
set -euo pipefail
cd "$(dirname "$0")/.."

own=$(.venv/bin/python -c "import torch; print(torch.backends.cpu.get_cpu_capability().lower())")
ran=0
for cap in default avx2 avx512; do
  [ "$cap" = "$own" ] && break
  echo "[capabilities] bit-sensitive tests under ATEN_CPU_CAPABILITY=$cap (this CPU: $own)"
  ATEN_CPU_CAPABILITY=$cap .venv/bin/pytest -q -p no:cacheprovider -m bits tests
  ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || echo "[capabilities] this CPU runs only the default kernels: no other capability to try"
