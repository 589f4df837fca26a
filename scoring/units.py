"""The unit registry: who is evaluated, in which group, under which parent."""
from __future__ import annotations

import re

import pandas as pd

from .audit import record
from .errors import Problems
from .permissions import User, require
from .readers import Problem, csv_records, decode_bytes, sniff_delimiter

HEADERS = {"单位代码": "unit_code", "单位名称": "unit_name", "分组": "group", "上级单位代码": "parent_code"}
COLUMNS = ["unit_code", "unit_name", "group", "parent_code"]
LABELS = {v: k for k, v in HEADERS.items()}

# Unicode category Cc; python-docx refuses them ("All strings must be XML compatible") and a
# line break inside a unit name would break the 通报's tables anyway
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def read_registry(path) -> pd.DataFrame:
    with open(path, "rb") as fh:
        return parse_registry(fh.read())


def parse_registry(data: bytes) -> pd.DataFrame:
    """A registry CSV (any encoding an upload may have), indexed by spreadsheet row number.

    Only the header is checked here; :func:`save_units` checks the rows, all at once.
    """
    text = decode_bytes(data)
    rows = csv_records(text, sniff_delimiter(text))
    if not rows:
        raise Problems("单位名录为空", [Problem(1, "", "", "缺少表头 单位代码, 单位名称, 分组, 上级单位代码")])
    header = [HEADERS.get(h.strip(), h.strip()) for h in rows[0]]
    missing = [Problem(1, "", "", f"缺少列「{LABELS[c]}」({c})") for c in COLUMNS[:3] if c not in header]
    if missing:
        raise Problems("单位名录格式错误", missing)
    at = {c: header.index(c) for c in COLUMNS if c in header}
    records, numbers = [], []
    for n, row in enumerate(rows[1:], start=2):
        if any(cell.strip() for cell in row):
            records.append([row[at[c]] if c in at and at[c] < len(row) else "" for c in COLUMNS])
            numbers.append(n)
    return pd.DataFrame(records, columns=COLUMNS, index=pd.Index(numbers, name="row"), dtype=object)


def _text(value) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def _shown(text: str) -> str:
    """A field as a problem shows it: control characters written out (\\x0b)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _cycle_of(start: str, parent: dict[str, str | None]) -> list[str] | None:
    """The loop of parents ``start`` leads into, if it lies on one."""
    path, seen = [], set()
    node = start
    while node is not None and node not in seen:
        seen.add(node)
        path.append(node)
        node = parent.get(node)
    return path if node == start and len(path) > 1 else None


def check_units(cur, units: pd.DataFrame) -> list[Problem]:
    """Every problem of a registry frame against the database as it is (read through ``cur``).

    Row numbers are the frame's index when it came from :func:`parse_registry`, else the row a
    CSV of the frame would have. A group must be one that a loaded scheme names (checked for new
    units and changed groups once any scheme is loaded: units are usually loaded first).
    """
    rows = units.index if units.index.name == "row" else pd.RangeIndex(2, len(units) + 2)
    text = {c: [_text(v) for v in units[c]] if c in units else [""] * len(units) for c in COLUMNS}
    known = dict(cur.execute("SELECT unit_code, grp FROM units").fetchall())
    parents = dict(cur.execute("SELECT unit_code, parent_code FROM units").fetchall())
    groups = {g for (g,) in cur.execute("SELECT DISTINCT unnest(groups) FROM schemes").fetchall()}
    problems: list[tuple[int, int, Problem]] = []

    def add(k: int, c: str, message: str, value: str | None = None) -> None:
        shown = _shown(text[c][k]) if value is None else value
        problems.append((int(rows[k]), COLUMNS.index(c), Problem(int(rows[k]), LABELS[c], shown, message)))

    first: dict[str, int] = {}
    for k in range(len(units)):
        for c in COLUMNS:
            if _CONTROL.search(text[c][k]):
                add(k, c, "含有控制字符(换行、制表符或从 Word 粘贴带来的不可见字符),请删除后重新导入")
        code = text["unit_code"][k].strip()
        for c in COLUMNS[:3]:
            if not text[c][k].strip():
                add(k, c, "不能为空")
        if code in first:
            add(k, "unit_code", f"与第{int(rows[first[code]])}行重复")
        elif code:
            first[code] = k
        group = text["group"][k].strip()
        if groups and group and known.get(code) != group and group not in groups:
            add(k, "group", f"分组「{group}」不是任何已加载考评表适用的分组(已有:{'、'.join(sorted(groups))})")

    # parents: the file's rows replace the database's, then every file unit is followed upwards
    for code, k in first.items():
        parents[code] = text["parent_code"][k].strip() or None
    reported: set[str] = set()
    for code, k in first.items():
        parent = parents[code]
        if parent is None:
            continue
        if parent == code:
            add(k, "parent_code", "上级单位不能是本单位")
        elif parent not in parents:
            add(k, "parent_code", f"上级单位代码「{parent}」不在单位名录中(文件和已有名录中都没有)")
        elif code not in reported and (cycle := _cycle_of(code, parents)):
            reported.update(cycle)
            add(k, "parent_code", f"上级单位形成循环:{' → '.join(cycle + [code])}")
    return [p for _, _, p in sorted(problems, key=lambda t: (t[0], t[1]))]


def save_units(store, units: pd.DataFrame, actor: User) -> dict:
    """Insert new units and update changed ones, all or nothing; units are never deleted."""
    require(actor, "units.manage")
    clean = pd.DataFrame({c: [_text(v).strip() or None for v in units[c]] if c in units else [None] * len(units)
                          for c in COLUMNS}, dtype=object)

    def write(cur):
        problems = check_units(cur, units)
        if problems:
            raise Problems(f"单位名录有{len(problems)}处问题,未做任何更改", problems)
        cur.register("new_units", clean)
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
