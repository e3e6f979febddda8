"""``leaf7 vendor import-csv``: keys from another system, read from a CSV file, imported into a
vendor's project in batches of 1000 (each one import, store/transfer.py)."""

import csv
import sys
from pathlib import Path
from typing import Any

import msgspec
import orjson

from handlers import schemas, transfer
from service.config import Settings
from service.storage import open_store
from store import ProjectNotFound, Store
from store.transfer import MAX_IMPORT, ImportEntry

CSV_COLUMNS = (
    "key_id",
    "discord_id",
    "hwid",
    "expires_at",
    "key_days",
    "key_hours",
    "key_minutes",
    "note",
    "banned",
    "redeemed",
)
_CSV_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_CSV_ERRORS_SHOWN = 1000  # lines listed in the summary at most (the counts are complete)


def _csv_key(row: dict[str, str | None]) -> "schemas.ImportKey":
    """One CSV row as an import entry (empty cells are absent); ValueError when it is not."""
    fields: dict[str, object] = {}
    for name, value in row.items():
        if value is None or value == "":
            continue
        if name in ("banned", "redeemed"):
            flag = _CSV_BOOLS.get(value.strip().lower())
            if flag is None:
                raise ValueError(f"{name}: must be true or false")
            fields[name] = flag
        else:
            fields[name] = value
    try:
        return msgspec.convert(fields, schemas.ImportKey, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc).replace("`$.", "`")) from None


async def import_csv(settings: Settings, vendor_id: str, project_id: str, file: Path) -> int:
    """``vendor import-csv VENDOR_ID PROJECT_ID FILE``: the rows in batches of 1000 keys (each
    one import, store/transfer.py). Exit status 0 when every row was imported or was in the
    project already, 1 when a row was bad or refused (or the project is not the vendor's),
    2 when the file cannot be read as such a CSV."""
    try:
        handle = file.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        print(f"leaf7: cannot read {file}: {exc.strerror}", file=sys.stderr)
        return 2
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
        except (csv.Error, UnicodeDecodeError) as exc:
            print(f"leaf7: {file}: {exc}", file=sys.stderr)
            return 2
        unknown = [c for c in header if c not in CSV_COLUMNS]
        if "key_id" not in header or unknown or len(set(header)) != len(header):
            print(
                f"leaf7: {file}: the header row must name key_id and only the columns "
                f"{', '.join(CSV_COLUMNS)}, each once (unknown: {', '.join(unknown) or '-'})",
                file=sys.stderr,
            )
            return 2
        async with open_store(settings) as store:
            try:
                await store.projects.get(vendor_id, project_id)
            except ProjectNotFound:
                print(
                    f"leaf7: no project {project_id} of vendor {vendor_id}",
                    file=sys.stderr,
                )
                return 1
            try:
                out = await _import_rows(store, vendor_id, project_id, reader)
            except (csv.Error, UnicodeDecodeError) as exc:
                print(f"leaf7: {file}: line {reader.line_num}: {exc}", file=sys.stderr)
                return 2
    sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
    sys.stdout.flush()
    return 0 if not out["bad_rows"] and not out["refused"] else 1


async def _import_rows(
    store: "Store", vendor_id: str, project_id: str, reader: "csv.DictReader[str]"
) -> dict[str, Any]:
    counts = {"rows": 0, "imported": 0, "unchanged": 0, "refused": 0, "bad_rows": 0}
    problems: list[dict[str, object]] = []

    def problem(line: int, detail: str, key_id: str | None = None) -> None:
        if len(problems) < _CSV_ERRORS_SHOWN:
            problems.append(
                {"line": line, **({"key_id": key_id} if key_id else {}), "detail": detail}
            )

    batch: list[tuple[int, ImportEntry]] = []
    lines: dict[str, int] = {}

    async def flush() -> None:
        if not batch:
            return
        summary = await store.transfer.import_keys(vendor_id, project_id, [e for _, e in batch])
        for (line, _), result in zip(batch, summary.results, strict=True):
            counts[result.status] += 1
            if result.status == "refused":
                problem(line, str(result.detail), result.key_id)
        batch.clear()
        lines.clear()

    end = reader.line_num
    for row in reader:
        line, end = end + 1, reader.line_num
        counts["rows"] += 1
        try:
            if None in row:
                raise ValueError("more cells than the header has columns")
            entry = transfer.to_entry(_csv_key(row))
            if entry.key_id in lines:
                raise ValueError(f"key_id: the same key as line {lines[entry.key_id]}")
        except ValueError as exc:  # InvalidEntry too
            counts["bad_rows"] += 1
            problem(line, str(exc), row.get("key_id") or None)
            continue
        lines[entry.key_id] = line
        batch.append((line, entry))
        if len(batch) == MAX_IMPORT:
            await flush()
    await flush()
    return {"vendor_id": vendor_id, "project_id": project_id, **counts, "errors": problems}
