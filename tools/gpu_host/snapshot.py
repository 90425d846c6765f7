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

from safetensors.torch import load_file, save_file

PART = 15 * 1024 * 1024


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    weights = load_file(src / "model.safetensors")
    half = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file(half, str(path), metadata={"format": "pt"})
        data = path.read_bytes()
    for i in range(0, len(data), PART):
        (out / f"w.part{i // PART}").write_bytes(data[i : i + PART])
    shutil.copy(src / "config.json", out / "config.json")
    print(f"{src}: {len(data)} bytes in {(len(data) + PART - 1) // PART} parts -> {out}")


if __name__ == "__main__":
    main()
