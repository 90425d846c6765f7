"""Write a model folder's weights as fp16 safetensors in parts of at most 15 MiB, plus its config.

For hosts that hand back only small files:

    python3 tools/gpu_host/snapshot.py exp/ds2_large_synth/avg OUT_DIR

Join the parts where they land (``cat w.part0 w.part1 ... > model.safetensors``) next to the
config.json: that folder loads with ``ds2.load_model`` and exports with ``train.export``.
"""

import shutil
import sys
import tempfile
from pathlib import Path

from ds2.checkpoint import CONFIG_NAME, WEIGHTS_NAME
from train.export import export_weights

PART = 15 * 1024 * 1024


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / WEIGHTS_NAME
        export_weights(src / WEIGHTS_NAME, path, half=True)
        data = path.read_bytes()
    for i in range(0, len(data), PART):
        (out / f"w.part{i // PART}").write_bytes(data[i : i + PART])
    shutil.copy(src / CONFIG_NAME, out / CONFIG_NAME)
    print(f"{src}: {len(data)} bytes in {(len(data) + PART - 1) // PART} parts -> {out}")


if __name__ == "__main__":
    main()
