"""A prompt prefix's KV cells kept on disk, so a new process does not evaluate the system message again.

The server keeps its model loaded and evaluates the fixed system message once (:mod:`.llama_cpp_kv`);
``groundglass ask`` is a new process per question and evaluated it every time: on the 2-core
development machine, the 107 tokens of the system message and question took 1.0-1.2 s, run beside the
search and on the answer's critical path once pages are read quickly. So the first prefix a process
warms (system message, question) is written here, its KV cells as ``llama_state_seq_get_data`` gives
them (28 KB a token for the default model), and a later process whose prompt starts the same way
(the system message, "Question:") copies them back and evaluates only the rest.

One file per model file and runtime (``key``): the path, size and modification time of the GGUF, the
llama-cpp-python version and the weight layout (repacked or not), so cells computed by another model,
build or kernel are never reused. A file is written whole to a temporary name and renamed, so a
process reading it while another writes sees the old or the new one, never half; its header holds a
checksum of the cells, so a damaged file is ignored (and replaced) rather than handed to llama.cpp.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from groundglass.log import get_logger

log = get_logger(__name__)

FORMAT = 1
MAX_BYTES = 64_000_000  # a prefix this large is not worth a disk copy (nor trusted to be ours)


def cache_file(directory: Path, model: Path, *, repacked: bool) -> Path:
    """Where the prompt prefix of ``model`` (as loaded: ``repacked`` or not) is kept in ``directory``."""
    import llama_cpp

    st = model.stat()
    ident = json.dumps(
        [str(model.resolve()), st.st_size, st.st_mtime_ns, llama_cpp.__version__, repacked, FORMAT]
    )
    return directory / f"{model.stem}-{hashlib.blake2b(ident.encode(), digest_size=8).hexdigest()}.kv"


def load(path: Path) -> tuple[list[int], bytes] | None:
    """The tokens and KV cells kept in ``path``; None when there is none or it is damaged."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(4), "little")
            head = json.loads(f.read(size))
            kv = f.read(MAX_BYTES + 1)
    except (OSError, ValueError):
        return None
    if not isinstance(head, dict) or head.get("format") != FORMAT or len(kv) > MAX_BYTES:
        return None
    tokens = head.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens) or not tokens:
        return None
    if head.get("blake2b") != hashlib.blake2b(kv, digest_size=16).hexdigest():
        log.info("prompt_cache_damaged", path=str(path))
        return None
    return tokens, kv


def save(path: Path, tokens: list[int], kv: bytes) -> None:
    """Keep ``tokens`` and their KV cells in ``path`` (atomically); a cache that cannot be written is
    skipped."""
    if len(kv) > MAX_BYTES:
        return
    head = json.dumps(
        {
            "format": FORMAT,
            "tokens": tokens,
            "blake2b": hashlib.blake2b(kv, digest_size=16).hexdigest(),
        }
    ).encode()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(len(head).to_bytes(4, "little") + head + kv)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        log.info("prompt_cache_not_written", path=str(path), error=str(exc))
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
