"""One DreamBooth run on the toy world, its settings given as JSON, scored by ``personalise.evaluate``.

``python -m bench.world_run OUT '{"steps": 300, "seed": 0, "lora": {"rank": 64}}' [BASE_MODEL]`` trains
with :class:`~groundglass.dreambooth.world.personalise.RunSettings` (any of its fields), on one CPU
thread, and writes ``OUT/results.json`` (the settings, the base model and the scores, with the run's
seconds). ``bench/world_variants.sh`` runs many of them side by side, one per core.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m bench.world_run OUT SETTINGS_JSON [BASE_MODEL]", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from groundglass.dreambooth.world.personalise import RunSettings, evaluate, load_personalised, personalise

    out, base = Path(argv[0]), Path(argv[2]) if len(argv) == 3 else None
    try:
        settings = json.loads(argv[1])
        run = RunSettings(**settings)
    except (json.JSONDecodeError, TypeError) as exc:
        fields = ", ".join(f.name for f in dataclasses.fields(RunSettings))
        print(
            f"error: SETTINGS_JSON: {exc}\nfix: a JSON object of RunSettings fields ({fields})",
            file=sys.stderr,
        )
        return 2
    start = time.monotonic()
    checkpoints = personalise(out, run, base_model=base, progress=False)
    scores, _ = evaluate(load_personalised(checkpoints / "last.ckpt"))
    scores["seconds"] = time.monotonic() - start
    record = {"settings": settings, "base": str(base), "scores": scores}
    (out / "results.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    print(json.dumps(scores))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
