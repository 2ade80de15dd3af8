"""Read and check a dataset folder: DIR/manifest.csv + the media and masks it names.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first recording is
row 2. Every message says "manifest.csv row N" with that convention.

`load_manifest` does the checks that need no decoding (columns, labels, files exist,
duplicates, conflicting labels) and raises one NeometerError listing every problem.
`check_dataset` adds decoding of every image, video and mask. Neither writes anything
inside the dataset folder.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from neometer.errors import NeometerError

MANIFEST = "manifest.csv"
REQUIRED_COLUMNS = ("infant_id", "media", "height_cm", "weight_kg")
OPTIONAL_COLUMNS = ("mask", "sex", "gestational_age_weeks", "tags")
ROW_CONVENTION = "rows are numbered as in a spreadsheet: the header is row 1"

# Plausible newborn ranges (the brief): outside them a value is a typo or a unit mix-up.
HEIGHT_RANGE_CM = (30.0, 65.0)
WEIGHT_RANGE_KG = (0.4, 6.5)
GESTATIONAL_AGE_RANGE_WEEKS = (20.0, 45.0)
SEX_VALUES = {"m": "M", "male": "M", "f": "F", "female": "F", "u": "U", "unknown": "U"}
MISSING_VALUES = {"", "nan", "na", "n/a", "none", "null", "-"}

# Column names people write when they mean one of ours: the hint names the fix.
COLUMN_HINTS = {
    "height_cm": ("height", "length", "length_cm", "height_mm", "length_mm", "body_length_cm"),
    "weight_kg": ("weight", "weight_g", "mass", "mass_kg", "weight_grams", "birth_weight_g"),
    "infant_id": ("infant", "id", "subject", "subject_id", "baby_id", "patient_id"),
    "media": ("video", "image", "file", "path", "filename"),
}


@dataclass(frozen=True)
class Recording:
    """One manifest row. `row` is the spreadsheet row (header = row 1, first data row = 2)."""

    row: int
    infant_id: str
    media: Path  # absolute
    height_cm: float
    weight_kg: float
    mask: Path | None = None  # absolute: a mask image (stills) or a folder of per-frame masks (videos)
    sex: str | None = None
    gestational_age_weeks: float | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


def where(dataset_dir: Path, row: int, infant_id: str | None, path: Path | str | None = None) -> str:
    """The prefix of every row-level message: `manifest.csv row N (infant X): media/foo.mp4`."""
    text = f"{MANIFEST} row {row}"
    if infant_id:
        text += f" (infant {infant_id})"
    if path is not None:
        text += f": {relative(path, dataset_dir)}"
    return text


def relative(path: Path | str, dataset_dir: Path) -> str:
    try:
        return Path(path).relative_to(dataset_dir).as_posix()
    except ValueError:
        return str(path)


# --- reading ----------------------------------------------------------------------------

def _read_table(manifest: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:  # -sig: Excel writes a BOM
            records = list(csv.reader(f))
    except UnicodeDecodeError as exc:
        raise NeometerError(f"{manifest}: not UTF-8 text ({exc.reason}); save it as 'CSV UTF-8'") from None
    except (OSError, csv.Error) as exc:
        raise NeometerError(f"{manifest}: cannot read it ({exc})") from None
    if not records or not any(cell.strip() for cell in records[0]):
        raise NeometerError(f"{manifest}: empty; the first line must be the header "
                            f"{','.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
    header = [c.strip().lower() for c in records[0]]
    return header, records[1:]


def _header_problems(header: list[str], manifest: Path) -> list[str]:
    problems = []
    for name in sorted({c for c in header if header.count(c) > 1 and c}):
        problems.append(f"{manifest.name} row 1: column '{name}' appears {header.count(name)} times — keep one")
    for name in REQUIRED_COLUMNS:
        if name in header:
            continue
        near = [c for c in header if c in COLUMN_HINTS.get(name, ())]
        hint = (f"rename '{near[0]}' to '{name}' (converting the values if its unit differs)" if near
                else f"add a '{name}' column")
        problems.append(f"{manifest.name} row 1: required column '{name}' is missing — {hint}; "
                        "units are part of the column names and are never guessed")
    return problems


def _parse_number(text: str) -> float | None:
    """None for an empty/NaN cell; raises ValueError for text that is not a number."""
    if text.strip().lower() in MISSING_VALUES:
        return None
    value = float(text.strip())  # a decimal comma is refused: "1,200" could be grams or 1.2 kg
    return None if math.isnan(value) else value


def _label_problem(name: str, value: float) -> str | None:
    """A plausibility message for height_cm / weight_kg, with a unit hint where one fits."""
    if not math.isfinite(value):
        return f"{name} is {value} — enter the scale reading"
    if name == "height_cm":
        lo, hi = HEIGHT_RANGE_CM
        if lo <= value <= hi:
            return None
        if lo * 10 <= value <= hi * 10:
            hint = f"looks like millimetres: enter {value / 10:g} (cm)"
        elif lo / 2.54 <= value <= hi / 2.54:
            hint = f"looks like inches: enter {value * 2.54:.1f} (cm)"
        elif lo / 100 <= value <= hi / 100:
            hint = f"looks like metres: enter {value * 100:g} (cm)"
        else:
            hint = "check the reading"
        return f"height_cm {value:g} is outside the plausible {lo:g}–{hi:g} cm — {hint}"
    lo, hi = WEIGHT_RANGE_KG
    if lo <= value <= hi:
        return None
    if lo * 1000 <= value <= hi * 1000:
        hint = f"looks like grams: enter {value / 1000:g} (kg)"
    elif hi < value <= hi / 0.45359237:
        hint = f"looks like pounds: enter {value * 0.45359237:.3f} (kg)"
    else:
        hint = "check the reading"
    return f"weight_kg {value:g} is outside the plausible {lo:g}–{hi:g} kg — {hint}"


def _path_in_dataset(text: str, dataset_dir: Path, column: str) -> tuple[Path | None, str | None]:
    rel = Path(text.strip().replace("\\", "/"))
    if rel.is_absolute():
        return None, f"{column} '{text}' is an absolute path — give it relative to the dataset folder"
    path = (dataset_dir / rel).absolute()
    if ".." in rel.parts:
        return None, f"{column} '{text}' points outside the dataset folder — move the file into it"
    return path, None


@dataclass
class _Row:
    """A manifest row as far as it could be parsed (labels may be None) plus its problems."""

    row: int
    infant_id: str
    media: Path | None
    height_cm: float | None
    weight_kg: float | None
    mask: Path | None
    sex: str | None
    gestational_age_weeks: float | None
    tags: tuple[str, ...]
    raw: tuple[str, ...]
    labels_ok: bool = True

    def recording(self) -> Recording:
        return Recording(self.row, self.infant_id, self.media, float(self.height_cm), float(self.weight_kg),
                         self.mask, self.sex, self.gestational_age_weeks, self.tags)


def _parse_row(row: int, cells: dict[str, str], raw: tuple[str, ...], dataset_dir: Path,
               problems: list[str]) -> _Row:
    infant = cells.get("infant_id", "").strip()
    media_text = cells.get("media", "").strip()

    def report(message: str, path: Path | None = None) -> None:
        problems.append(f"{where(dataset_dir, row, infant or None, path)}: {message}")

    if not infant:
        report("infant_id is empty — every recording needs the id of its infant (folds are grouped by it)")
    media = None
    if not media_text:
        report("media is empty — give the video or image path relative to the dataset folder")
    else:
        media, bad = _path_in_dataset(media_text, dataset_dir, "media")
        if bad:
            report(bad)
        elif not media.exists():
            report("media file not found — fix the path (it is relative to the dataset folder) or add the file",
                   media)
        elif media.is_dir():
            report("media is a folder — give one video or image file", media)

    labels: dict[str, float | None] = {}
    labels_ok = True
    for name, unit in (("height_cm", "cm"), ("weight_kg", "kg")):
        text = cells.get(name, "")
        try:
            value = _parse_number(text)
        except ValueError:
            report(f"{name} '{text}' is not a number — write the reading in {unit} as a plain number with a decimal point")
            value, labels_ok = None, False
        else:
            if value is None:
                report(f"{name} is empty or NaN — fill in the scale reading in {unit} (or remove the row)")
                labels_ok = False
            elif (msg := _label_problem(name, value)) is not None:
                report(msg)
                labels_ok = False
        labels[name] = value

    mask = None
    mask_text = cells.get("mask", "").strip()
    if mask_text:
        mask, bad = _path_in_dataset(mask_text, dataset_dir, "mask")
        if bad:
            report(bad)
        elif not mask.exists():
            report("mask not found — fix the path, or leave the mask cell empty for no mask", mask)
            mask = None
        elif media is not None and media.exists():
            from neometer.data.media import is_video  # light module, but keep the import local

            if is_video(media) and not mask.is_dir():
                report("mask of a video must be a folder of per-frame PNGs (000000.png, 000001.png, ...)", mask)
                mask = None
            elif not is_video(media) and mask.is_dir():
                report("mask of an image must be one mask image, not a folder", mask)
                mask = None

    sex = None
    sex_text = cells.get("sex", "").strip()
    if sex_text and sex_text.lower() not in MISSING_VALUES:
        sex = SEX_VALUES.get(sex_text.lower())
        if sex is None:
            report(f"sex '{sex_text}' is not one of M, F, U — use M, F or U (or leave it empty)")

    ga = None
    ga_text = cells.get("gestational_age_weeks", "")
    try:
        ga = _parse_number(ga_text)
    except ValueError:
        report(f"gestational_age_weeks '{ga_text}' is not a number — write weeks as a number, e.g. 39.5")
    if ga is not None and not GESTATIONAL_AGE_RANGE_WEEKS[0] <= ga <= GESTATIONAL_AGE_RANGE_WEEKS[1]:
        lo, hi = GESTATIONAL_AGE_RANGE_WEEKS
        hint = f"looks like days: enter {ga / 7:.1f} (weeks)" if lo * 7 <= ga <= hi * 7 else "check the value"
        report(f"gestational_age_weeks {ga:g} is outside {lo:g}–{hi:g} weeks — {hint}")
        ga = None

    tags = tuple(t.strip() for t in cells.get("tags", "").split(";") if t.strip())
    return _Row(row, infant, media, labels["height_cm"], labels["weight_kg"], mask, sex, ga, tags, raw,
                labels_ok)


def _cross_row_problems(rows: list[_Row], dataset_dir: Path) -> list[str]:
    """Duplicate rows / media listed twice, and one infant with conflicting labels."""
    problems = []
    first_by_media: dict[Path, _Row] = {}
    for r in rows:
        if r.media is None:
            continue
        first = first_by_media.setdefault(r.media, r)
        if first is r:
            continue
        prefix = where(dataset_dir, r.row, r.infant_id or None, r.media)
        if first.raw == r.raw:
            problems.append(f"{prefix}: duplicate row: identical to row {first.row} — delete one of them")
        elif first.infant_id != r.infant_id:
            problems.append(f"{prefix}: the same media is also listed in row {first.row} for infant "
                            f"{first.infant_id} — one recording belongs to one infant; fix the infant_id")
        else:
            problems.append(f"{prefix}: duplicate row: the same media is already listed in row {first.row} "
                            "— delete one of them")

    first_by_infant: dict[str, _Row] = {}
    for r in rows:
        if not r.infant_id or r.height_cm is None or r.weight_kg is None:
            continue
        first = first_by_infant.setdefault(r.infant_id, r)
        if first is r:
            continue
        diffs = [f"{name} {getattr(r, name):g} here but {getattr(first, name):g} in row {first.row}"
                 for name in ("height_cm", "weight_kg") if abs(getattr(r, name) - getattr(first, name)) > 1e-6]
        if diffs:
            problems.append(f"{where(dataset_dir, r.row, r.infant_id, r.media)}: conflicting labels for infant "
                            f"{r.infant_id}: {'; '.join(diffs)} — one infant has one scale reading: correct the "
                            "wrong row (or give a re-measured session its own rows consistently)")
    return problems


def _read_rows(dataset_dir: str | Path) -> tuple[Path, list[_Row], list[str]]:
    """Parse everything that can be parsed; never raise for a row-level problem."""
    dataset_dir = Path(dataset_dir).absolute()
    if not dataset_dir.is_dir():
        raise NeometerError(f"{dataset_dir}: no such folder — give the dataset folder that holds {MANIFEST}")
    manifest = dataset_dir / MANIFEST
    if not manifest.is_file():
        raise NeometerError(f"{dataset_dir}: no {MANIFEST} — a dataset folder holds {MANIFEST} with the columns "
                            f"{', '.join(REQUIRED_COLUMNS)} (+ optional {', '.join(OPTIONAL_COLUMNS)})")
    header, records = _read_table(manifest)
    problems = _header_problems(header, manifest)
    if problems:
        return dataset_dir, [], problems
    rows = []
    for n, record in enumerate(records, start=2):
        if not any(cell.strip() for cell in record):
            continue  # blank line (still counted, as a spreadsheet counts it)
        if len(record) != len(header):
            problems.append(f"{MANIFEST} row {n}: has {len(record)} cells but the header has {len(header)} "
                            "— quote cells that contain commas, and give every column a cell")
            continue
        cells = dict(zip(header, record))
        rows.append(_parse_row(n, cells, tuple(c.strip() for c in record), dataset_dir, problems))
    if not rows and not problems:
        problems.append(f"{MANIFEST}: no recordings below the header — add one row per recording")
    problems += _cross_row_problems(rows, dataset_dir)
    return dataset_dir, rows, sorted(problems, key=_row_of)  # stable: a row's messages keep their order


def load_manifest(dataset_dir: str | Path) -> list[Recording]:
    """The recordings of a dataset; raises NeometerError listing every structural problem."""
    dataset_dir, rows, problems = _read_rows(dataset_dir)
    if problems:
        raise NeometerError(f"{dataset_dir / MANIFEST}: {len(problems)} problem(s) ({ROW_CONVENTION}); "
                            "run `neometer data check` for the full check", problems=problems)
    return [r.recording() for r in rows]


# --- the full check ---------------------------------------------------------------------

@dataclass
class CheckReport:
    dataset_dir: Path
    recordings: int = 0
    infants: int = 0
    videos: int = 0
    images: int = 0
    frames: int = 0  # decodable source frames (every video frame + 1 per image)
    sampled_frames: int = 0  # frames a frame table at `fps` would hold
    fps: float | None = None
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rate = f"{self.fps:g} fps" if self.fps else "every frame"
        return (f"{self.dataset_dir}: {self.recordings} recordings ({self.videos} videos, {self.images} images) "
                f"of {self.infants} infants, {self.frames} frames ({self.sampled_frames} sampled at {rate}), "
                f"{len(self.problems)} problem(s)")


def check_report(dataset_dir: str | Path, progress: bool = True, fps: float | None = 2.0) -> CheckReport:
    """Every problem of a dataset, found in one pass (structural + decoding media and masks)."""
    from tqdm import tqdm

    from neometer.data.media import check_media

    dataset_dir, rows, problems = _read_rows(dataset_dir)
    report = CheckReport(dataset_dir, recordings=len(rows), fps=fps, problems=problems)
    report.infants = len({r.infant_id for r in rows if r.infant_id})
    for r in tqdm(rows, desc="checking media", unit="rec", disable=not progress, leave=False):
        if r.media is None or not r.media.is_file():
            continue
        result = check_media(r.media, r.mask, fps=fps)
        report.videos += result.is_video
        report.images += not result.is_video
        report.frames += result.frames
        report.sampled_frames += result.sampled_frames
        prefix = where(dataset_dir, r.row, r.infant_id or None)
        report.problems += [f"{prefix}: {relative(path, dataset_dir)}: {msg}" for path, msg in result.problems]
    report.problems = sorted(report.problems, key=_row_of)  # media problems join their row's
    return report


def _row_of(message: str) -> int:
    prefix = f"{MANIFEST} row "
    if message.startswith(prefix):
        digits = message[len(prefix):].split(" ", 1)[0].rstrip(":")
        if digits.isdigit():
            return int(digits)
    return 0


def check_dataset(dataset_dir: str | Path, progress: bool = True, fps: float | None = 2.0) -> list[str]:
    """Every problem of the dataset as `manifest.csv row N (infant X): path: problem — fix`; [] if clean."""
    return check_report(dataset_dir, progress=progress, fps=fps).problems


# --- content hash -----------------------------------------------------------------------

def cache_root() -> Path:
    """$NEOMETER_CACHE, else $XDG_CACHE_HOME/neometer, else ~/.cache/neometer. Never the dataset."""
    if os.environ.get("NEOMETER_CACHE"):
        return Path(os.environ["NEOMETER_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "neometer"


class FileHashCache:
    """sha256 of files, remembered in a small JSON keyed by absolute path + size + mtime_ns,
    so re-hashing gigabytes of video is skipped when nothing changed."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.dirty = False
        try:
            self.entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    def sha256(self, file: Path) -> str:
        st = file.stat()
        key = str(file.absolute())
        entry = self.entries.get(key)
        if entry and entry["size"] == st.st_size and entry["mtime_ns"] == st.st_mtime_ns:
            return entry["sha256"]
        digest = sha256_file(file)
        self.entries[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
        self.dirty = True
        return digest

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.entries, sort_keys=True))
            os.replace(tmp, self.path)  # atomic: a concurrent reader sees the old or the new file
            self.dirty = False
        except OSError:
            pass  # a cache that cannot be written only costs time


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def files_of(path: Path | None) -> list[Path]:
    """A file, or every file in a mask folder (sorted), or nothing."""
    if path is None:
        return []
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return [path]


def dataset_sha256(dataset_dir: str | Path, cache_dir: str | Path | None = None) -> str:
    """Content hash of manifest.csv + every media file + every mask file (paths relative to
    the dataset, so a moved dataset keeps its hash). Per-file hashes are cached in
    `<cache>/file_hashes.json` (cache = cache_dir or cache_root())."""
    dataset_dir = Path(dataset_dir).absolute()
    recordings = load_manifest(dataset_dir)
    hashes = FileHashCache(Path(cache_dir or cache_root()) / "file_hashes.json")
    files = {dataset_dir / MANIFEST}
    for rec in recordings:
        files.add(rec.media)
        files.update(files_of(rec.mask))
    h = hashlib.sha256()
    for file in sorted(files):
        h.update(f"{relative(file, dataset_dir)}\0{hashes.sha256(file)}\n".encode())
    hashes.save()
    return h.hexdigest()
