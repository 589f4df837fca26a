"""The unit registry: who is evaluated, in which group, under which parent."""
from __future__ import annotations

import pandas as pd

from .permissions import User, require
from .audit import record
from .errors import Problems

HEADERS = {"单位代码": "unit_code", "单位名称": "unit_name", "分组": "group", "上级单位代码": "parent_code"}
COLUMNS = ["unit_code", "unit_name", "group", "parent_code"]


def read_registry(path) -> pd.DataFrame:
    with open(path, "rb") as fh:
        return parse_registry(fh.read())


def parse_registry(data: bytes) -> pd.DataFrame:
    """A registry CSV (any encoding an upload may have); every problem named by row and column."""
    import csv
    import io

    from .ingest import decode_bytes, sniff_delimiter  # the same forgiving reader as uploads

    text = decode_bytes(data)
    rows = list(csv.reader(io.StringIO(text), delimiter=sniff_delimiter(text)))
    if not rows:
        raise Problems("单位名录为空", ["第1行:缺少表头 unit_code, unit_name, group, parent_code"])
    header = [HEADERS.get(h.strip(), h.strip()) for h in rows[0]]
    problems = [f"第1行:缺少列「{c}」" for c in COLUMNS[:3] if c not in header]
    if problems:
        raise Problems("单位名录格式错误", problems)
    records = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        rec = {c: (row[header.index(c)].strip() if c in header and header.index(c) < len(row) else "")
               for c in COLUMNS}
        for c in COLUMNS[:3]:
            if not rec[c]:
                problems.append(f"第{n}行,列 {c}:不能为空")
        if rec["unit_code"] in seen:
            problems.append(f"第{n}行,列 unit_code,值「{rec['unit_code']}」:与第{seen[rec['unit_code']]}行重复")
        seen[rec["unit_code"]] = n
        rec["parent_code"] = rec["parent_code"] or None
        records.append(rec)
    if problems:
        raise Problems("单位名录有错误,未做任何更改", problems)
    return pd.DataFrame(records, columns=COLUMNS)


def save_units(store, units: pd.DataFrame, actor: User) -> dict:
    """Insert new units and update changed ones; units are never deleted."""
    require(actor, "units.manage")

    def write(cur):
        cur.register("new_units", units[COLUMNS])
        try:
            differs = ('n.unit_name IS DISTINCT FROM u.unit_name OR n."group" IS DISTINCT FROM u.grp '
                       "OR n.parent_code IS DISTINCT FROM u.parent_code")
            new = cur.execute("SELECT count(*) FROM new_units n ANTI JOIN units u USING (unit_code)").fetchone()[0]
            changed = cur.execute(f"SELECT count(*) FROM new_units n JOIN units u USING (unit_code) WHERE {differs}").fetchone()[0]
            cur.execute(f"""UPDATE units u SET unit_name = n.unit_name, grp = n."group", parent_code = n.parent_code
                            FROM new_units n WHERE u.unit_code = n.unit_code AND ({differs})""")
            cur.execute("""INSERT INTO units SELECT n.unit_code, n.unit_name, n."group", n.parent_code
                           FROM new_units n ANTI JOIN units u USING (unit_code)""")
        finally:
            cur.unregister("new_units")
        record(cur, actor, "units", "", f"新增{new}个,更新{changed}个,共{len(units)}行")
        return {"new": new, "changed": changed, "total": len(units)}

    return store.write(write)


def all_units(store) -> pd.DataFrame:
    return store.df('SELECT unit_code, unit_name, grp AS "group", parent_code FROM units ORDER BY grp, unit_code')


def unit(store, unit_code: str) -> dict | None:
    row = store.one("SELECT unit_code, unit_name, grp, parent_code FROM units WHERE unit_code = ?", [unit_code])
    return dict(zip(COLUMNS, row)) if row else None
