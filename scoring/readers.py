"""Reading uploaded files: bytes to text, CSV and XLSX to a :class:`Table` of cell texts.

Forgiving about encodings, delimiters, title lines and blank rows; bounded in time and memory
whatever a file claims (a 1 MB .xlsx can describe 16,384 styled columns of a million rows).
Only :func:`decode_bytes` raises; every other failure is a :class:`Problem` of the table.

The usual CSV (no quotes, every row as wide as the first) is split by Arrow's CSV reader into
string columns; anything else goes through the csv module, which gives the same table where both
can read a file (tests/test_ingest_fast.py).
"""
from __future__ import annotations

import csv
import functools
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from .errors import InputError

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
MAX_COLS = 1_000                  # columns read per row (Excel allows 16,384)
MAX_CELLS = 5_000_000             # rows × columns of a table: 40 MB of cell references
MAX_SHEET_CELLS = 1_000_000       # rows and cells an XLSX sheet may describe, styled blanks included:
                                  # about a second of parsing, 15,000 rows × 66 columns of data
MAX_SHEET_BYTES = 128 * 1024 * 1024   # the first sheet's XML, decompressed
MAX_PART_BYTES = 16 * 1024 * 1024     # any other XML part openpyxl parses (shared strings, styles…)
MAX_CELL_CHARS = 32_767               # Excel's own limit for one cell
PREVIEW_ROWS = 20

# full-width forms (what a Chinese input method types: １２、９５％、Ｑ) and the ideographic space;
# deliberately not NFKC, which also turns ², ① or 𝟐 into digits
HALFWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def halfwidth(text: str) -> str:
    return text.translate(HALFWIDTH)


def header_key(text: str) -> str:
    """Header / indicator-name matching key: NFKC, no whitespace, lower case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text))).lower()


class Problem(dict):
    """One problem: a dict ``row, column, value, message`` that prints as one Chinese line."""

    def __init__(self, row=None, column="", value="", message=""):
        super().__init__(row=row, column=column, value=value, message=message)

    def __str__(self) -> str:
        place = "文件" if self["row"] is None else f"第{self['row']}行"
        if self["column"]:
            place += f",列「{self['column']}」"
        if self["value"] != "":
            place += f",值「{self['value']}」"
        return f"{place}:{self['message']}"


@dataclass
class Table:
    """The cells of an upload as text (stripped, ``""`` for blank), with spreadsheet row numbers.

    ``columns`` holds one Arrow string column per header column, a value per data row; ``cells``
    is the same as a data rows × columns object array, made when first asked for.
    ``stray`` lists the columns (0-based) right of the header's last title that hold data."""

    file_name: str
    kind: str = ""                      # csv | xlsx | ""
    encoding: str = ""
    delimiter: str = ""
    header: list[str] = field(default_factory=list)
    header_row: int = 1
    columns: list[pa.Array] = field(default_factory=list)
    row_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    stray: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)      # the file could not be read

    @property
    def ok(self) -> bool:
        return not self.problems

    @functools.cached_property
    def cells(self) -> np.ndarray:
        return self._block(len(self.row_numbers))

    def _block(self, n: int) -> np.ndarray:
        """The first ``n`` data rows as an object array."""
        block = np.empty((n, len(self.columns)), dtype=object)
        for j, column in enumerate(self.columns):
            block[:, j] = column.slice(0, n).to_numpy(zero_copy_only=False)
        return block

    def text(self, i: int, j: int) -> str:
        return self.columns[j][int(i)].as_py()

    def nonblank(self, j: int) -> np.ndarray:
        return pc.binary_length(self.columns[j]).to_numpy() > 0

    def factorize(self, j: int) -> tuple[np.ndarray, pa.Array]:
        """(code of every cell of column ``j``, the distinct texts: cell i is ``texts[codes[i]]``)."""
        encoded = self.columns[j].dictionary_encode()
        return encoded.indices.to_numpy(), encoded.dictionary

    def preview(self, n: int = PREVIEW_ROWS) -> pd.DataFrame:
        """The first ``n`` data rows as read, the first column 行 being the spreadsheet row number."""
        names, seen = [], {}
        for j, h in enumerate(self.header):
            name = h or f"(第{j + 1}列)"
            seen[name] = seen.get(name, 0) + 1
            names.append(name if seen[name] == 1 else f"{name}({seen[name]})")
        n = min(n, len(self.row_numbers))
        df = pd.DataFrame(self._block(n).reshape(-1, len(names)), columns=names, dtype=object)
        df.insert(0, "行" if "行" not in names else "(行号)", self.row_numbers[:n])
        return df


class _Unreadable(Exception):
    """Stops reading: the file has the problem carried."""

    def __init__(self, problem: Problem):
        self.problem = problem


def _file_problem(message: str, row=None, column: str = "", value: str = "") -> Problem:
    return Problem(row=row, column=column, value=value, message=message)


# -- text ----------------------------------------------------------------------------------------
def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): BOM first (UTF-8/UTF-16/UTF-32), then strict UTF-8, then strict GB18030."""
    boms = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
            (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
    for bom, enc in boms:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(enc), enc.upper().replace("-LE", "").replace("-BE", "") + " BOM"
            except UnicodeDecodeError as exc:
                raise InputError(f"文件以 {enc.upper()} 的 BOM 开头,但第{exc.start + len(bom) + 1}个字节起"
                                 f"不是有效的 {enc.upper()} 内容,无法读取") from None
    for enc, label in (("utf-8", "UTF-8"), ("gb18030", "GB18030")):
        try:
            return data.decode(enc), label
        except UnicodeDecodeError:
            pass
    raise InputError("无法识别文件编码:既不是 UTF-8(可带 BOM)、UTF-16(带 BOM),也不是 GBK/GB18030。"
                     "请在 Excel 中“另存为”CSV UTF-8(逗号分隔)或 .xlsx 后重新上传")


def decode_bytes(data: bytes) -> str:
    """The text of an uploaded file (see :func:`decode`); InputError in Chinese if no encoding fits."""
    return decode(data)[0]


def sniff_delimiter(text: str) -> str:
    """``"\\t"`` when the first non-blank line has more tabs than commas, else ``","``."""
    head = text[:1 << 16]       # the first lines, not the whole file's
    lines = head.splitlines()[:-1] if len(head) < len(text) else head.splitlines()  # the last may be cut
    line = next((line for line in lines if line.strip()), None)
    if line is None and len(head) < len(text):
        line = next((line for line in text.splitlines() if line.strip()), None)
    if line is None:
        return ","
    return "\t" if line.count("\t") > line.count(",") else ","


def csv_records(text: str, delimiter: str) -> list[list[str]]:
    """The records of a CSV text, cells as written; InputError when the quoting is broken."""
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise InputError(f"CSV 格式错误,无法读取:{exc}") from None


# -- CSV -------------------------------------------------------------------------------------------
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"
_PADDING = re.compile(r"[^\S\r\n]")        # whitespace other than line breaks
_PADDING_TAB = re.compile(r"[^\S\r\n\t]")  # ... and other than the tab delimiter
_BINARY = "文件含有二进制内容,不是文本表格:请上传 .csv 或 .xlsx 文件"
# The text is screened as UTF-8 bytes in one pass (bytes.translate keeps only the bytes named here):
# control characters are those bytes themselves, and every whitespace character but \r and \n
# begins with one of _PADDING_BYTES (tests/test_ingest_fast.py checks every code point).
_CONTROL_BYTES = frozenset([*range(0x00, 0x09), 0x0b, 0x0c, *range(0x0e, 0x20), 0x7f])
_PADDING_BYTES = {",": frozenset(b" \t\xc2\xe1\xe2\xe3"), "\t": frozenset(b" \xc2\xe1\xe2\xe3")}
_QUOTE = ord('"')
_SCREEN = {d: bytes(b for b in range(256) if b not in _CONTROL_BYTES | pad | {_QUOTE})
           for d, pad in _PADDING_BYTES.items()}   # the bytes to delete


def _read_csv(data: bytes, table: Table, header_keys) -> None:
    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        raise _Unreadable(_file_problem(_BINARY))
    try:
        text, table.encoding = decode(data)
    except InputError as exc:
        raise _Unreadable(_file_problem(str(exc))) from None
    text = text.rstrip("\x1a")  # DOS end-of-file marker of old exports
    if any(ch in text for ch in _INVISIBLE):
        text = text.translate({ord(ch): None for ch in _INVISIBLE})
    raw = text.encode("utf-8")
    table.delimiter = sniff_delimiter(text)
    found = frozenset(raw.translate(None, _SCREEN[table.delimiter]))
    if found & _CONTROL_BYTES:
        raise _Unreadable(_file_problem(_BINARY))
    # most exports have no padding at all: then no cell needs stripping
    padded = bool(found & _PADDING_BYTES[table.delimiter])
    if _QUOTE not in found and _csv_columns(text, raw, padded, table, header_keys):
        return
    try:
        rows = csv_records(text, table.delimiter)
    except InputError as exc:
        raise _Unreadable(_file_problem(str(exc))) from None
    if len(rows) > MAX_ROWS + 1:
        raise _Unreadable(_file_problem(f"文件超过 {MAX_ROWS} 行,请拆分后上传"))
    if padded and (_PADDING_TAB if table.delimiter == "\t" else _PADDING).search(text):
        rows = [[c.strip() for c in r] for r in rows]
    _tabulate(table, [(i, r) for i, r in enumerate(rows, start=1) if any(r)], header_keys)


_LINE_END = re.compile(r"\r\n|\r|\n")


def _lines(text: str):
    """The lines of ``text`` with their ends, as ``io.StringIO(text, newline="")`` gives them (what
    the csv module reads), one at a time without copying the text."""
    start = 0
    for end in _LINE_END.finditer(text):
        yield text[start:end.end()]
        start = end.end()
    if start < len(text):
        yield text[start:]


def _csv_columns(text: str, raw: bytes, padded: bool, table: Table, header_keys) -> bool:
    """Fill ``table`` from a CSV text without quotes (``raw``: its UTF-8) by Arrow's reader, or
    return False when the csv module must read it: ragged rows, blank lines only, a limit exceeded.

    Without quotes a record is a line (ended by \\r\\n, \\n or \\r, as for the csv module) and a cell
    holds neither a line break nor, in a tab-separated file, a tab: any other whitespace in it is
    padding, stripped like every cell of a padded file (``padded``). The header is found among the
    first lines by the csv module; the lines below it go to Arrow, one string column each.
    """
    head: list[tuple[int, list[str], int]] = []   # (row number, cells, characters up to its end)
    end = 0
    try:
        for n, line in enumerate(_lines(text), start=1):
            end += len(line)
            record = [c.strip() for c in next(csv.reader([line], delimiter=table.delimiter), [])]
            if any(record):
                head.append((n, record, end))
                if len(head) == _HEAD_RECORDS:
                    break
    except csv.Error:       # a cell over the csv module's size limit
        return False
    if not head:
        return False
    header_row, header, end = head[_header_at([r for _, r, _ in head], header_keys)]
    body = raw[len(text[:end].encode("utf-8")):]
    width = max((j + 1 for j, h in enumerate(header) if h), default=0)
    if re.search(rb"[^\r\n]", body):
        first = re.match(rb"[^\r\n]*", body).group()
        names = [str(j) for j in range(first.count(table.delimiter.encode()) + 1)]
        try:
            read = pa_csv.read_csv(
                pa.BufferReader(body),
                read_options=pa_csv.ReadOptions(column_names=names),
                parse_options=pa_csv.ParseOptions(delimiter=table.delimiter, quote_char=False, double_quote=False,
                                                  escape_char=False, newlines_in_values=False,
                                                  ignore_empty_lines=False),
                convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                      strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                      check_utf8=False))
        except pa.ArrowInvalid:      # rows of different widths
            return False
        columns = [c.combine_chunks() for c in read.columns]
    elif body:
        return False                 # blank lines only: the csv module counts them
    else:
        columns = []
    rows = len(columns[0]) if columns else 0
    if header_row + rows > MAX_ROWS + 1 or width > MAX_COLS:
        return False
    lengths = [pc.binary_length(c).to_numpy() for c in columns]
    if any(int(length.max(initial=0)) > csv.field_size_limit() for length in lengths):
        return False                 # the csv module refuses a cell so long
    if padded:
        columns = [_stripped(c) for c in columns]
        lengths = [pc.binary_length(c).to_numpy() for c in columns]
    filled = np.zeros(rows, dtype=bool)
    for length in lengths:
        filled |= length > 0
    keep = np.flatnonzero(filled)    # blank rows are left out, their row numbers skipped
    if len(keep) * width > MAX_CELLS:
        return False
    if len(keep) < rows:
        columns = [c.take(keep) for c in columns]
    if width > len(columns):         # rows shorter than the header: blank cells
        columns += [pa.array([""] * len(keep), pa.string())] * (width - len(columns))
    table.header, table.header_row = header[:width], header_row
    table.columns = columns[:width]
    table.row_numbers = header_row + 1 + keep.astype(np.int64)
    table.stray = [j for j in range(width, len(lengths)) if lengths[j].any()]
    return True


def _stripped(column: pa.Array) -> pa.Array:
    """The column with every cell stripped (str.strip, once per distinct text)."""
    encoded = column.dictionary_encode()
    texts = encoded.dictionary.to_pylist()
    clean = [t.strip() for t in texts]
    return column if clean == texts else pa.array(clean, pa.string()).take(encoded.indices)


# -- XLSX ------------------------------------------------------------------------------------------
_SHEET_NS = ("http://schemas.openxmlformats.org/spreadsheetml/2006/main",
             "http://purl.oclc.org/ooxml/spreadsheetml/main")
_TAGS = {f"{ns} {tag}": tag for ns in _SHEET_NS for tag in ("row", "c", "v", "is", "t", "rPh")}
_MAX_EXCEL_ROW = 1_048_576
_DIGITS = "0123456789"
_INT_RE = re.compile(r"[+-]?[0-9]+")


def _column_letters(col: int) -> str:
    letters = ""
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@functools.lru_cache(maxsize=20_000)
def _column_index(letters: str) -> int:
    """``"AB"`` -> 28; 0 when there are no letters (or anything else)."""
    col = 0
    for ch in letters.upper():
        if not "A" <= ch <= "Z":
            return 0
        col = col * 26 + ord(ch) - 64
    return col


def _clean(text) -> str:
    return str(text).strip().strip(_INVISIBLE).strip()


def _datetime_text(value) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dtime(0) else value.isoformat(sep=" ")
    if isinstance(value, (date, dtime)):
        return value.isoformat()
    return str(value)


def _number_text(raw: str) -> str:
    """A number cell as a person reads it: 1234 not 1234.0; a long integer stays as written."""
    if _INT_RE.fullmatch(raw):
        return str(int(raw)) if len(raw) <= 18 else raw
    try:
        v = float(raw)   # a string never overflows: 1e400 becomes inf, which the checker refuses
    except ValueError:
        return raw
    if not np.isfinite(v):
        return raw
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.15g}"


class _Workbook:
    """What the first sheet's cells need from the rest of the workbook, read with openpyxl's own
    readers (manifest, shared strings, workbook, styles) but never through ``load_workbook``:
    that parses every sheet whole to find its size when a ``<dimension>`` is missing."""

    def __init__(self, data: bytes):
        from openpyxl.reader.excel import ExcelReader
        from openpyxl.styles.numbers import BUILTIN_FORMATS, BUILTIN_FORMATS_MAX_SIZE
        from openpyxl.styles.stylesheet import apply_stylesheet

        reader = ExcelReader(io.BytesIO(data), read_only=True, data_only=True)
        self.archive = reader.archive
        reader.read_manifest()
        reader.read_strings()
        reader.read_workbook()
        apply_stylesheet(reader.archive, reader.parser.wb)
        wb = reader.parser.wb
        self.sheet = next((rel.target for _, rel in reader.parser.find_sheets()
                           if rel.target in reader.valid_files and "chartsheet" not in rel.Type), None)
        self.strings = reader.shared_strings
        self.epoch = wb.epoch
        self.dates, self.timedeltas = set(wb._date_formats), set(wb._timedelta_formats)
        formats = [BUILTIN_FORMATS.get(xf.numFmtId, "General") if xf.numFmtId < BUILTIN_FORMATS_MAX_SIZE
                   else wb._number_formats[xf.numFmtId - BUILTIN_FORMATS_MAX_SIZE] for xf in wb._cell_styles]
        self.percents = {i for i, f in enumerate(formats) if "%" in str(f)}

    def text(self, kind: str, raw: str, style: int) -> str:
        """One cell's value as text, as openpyxl's ``data_only`` reading would give it."""
        if kind == "s":
            index = int(raw)
            if index < 0:
                raise IndexError(index)
            return _clean(self.strings[index])
        if kind == "b":
            return "true" if raw.strip() in ("1", "true") else "false"
        if kind in ("inlineStr", "str", "e"):
            return _clean(raw)
        if kind == "d":
            from openpyxl.utils.datetime import from_ISO8601
            try:
                return _datetime_text(from_ISO8601(raw))
            except ValueError:
                return _clean(raw)
        raw = raw.strip()
        if style in self.dates:
            from openpyxl.utils.datetime import from_excel
            try:
                return _datetime_text(from_excel(float(raw), self.epoch, timedelta=style in self.timedeltas))
            except (ValueError, OverflowError):
                return _number_text(raw)
        if style in self.percents:
            try:
                return f"{float(raw) * 100:.12g}%"
            except ValueError:
                return raw
        return _number_text(raw)


def _xlsx_rows(data: bytes) -> list[tuple[int, dict[int, str]]]:
    """The non-blank rows of the first sheet: (row number, {column index: text}).

    The sheet is streamed through expat, cell by cell, within :data:`MAX_SHEET_CELLS`; a cell
    without a value (only formatted) costs a count and nothing else.
    """
    import warnings
    import xml.parsers.expat

    try:
        for info in zipfile.ZipFile(io.BytesIO(data)).infolist():
            if (info.filename.endswith((".xml", ".rels")) and "worksheets/" not in info.filename
                    and info.file_size > MAX_PART_BYTES):
                raise _Unreadable(_file_problem(f"Excel 文件中的「{info.filename}」解压后超过 "
                                                f"{MAX_PART_BYTES // 2**20} MB,无法读取"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = _Workbook(data)
        if book.sheet is None:
            raise _Unreadable(_file_problem("Excel 文件中没有工作表"))
        source = book.archive.open(book.sheet)
    except _Unreadable:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken file raises anything from zipfile/openpyxl
        raise _Unreadable(_file_problem(f"无法读取 Excel 文件(文件可能已损坏或不是 .xlsx):{type(exc).__name__}")) from None

    rows: list[tuple[int, dict[int, str]]] = []
    # the state of the parse, in locals of the handlers for speed
    row_no = in_row = col = 0        # in_row: cells seen in the current row
    cells: dict[int, str] | None = None
    cell: dict = {}                  # the current cell's attributes
    budget = MAX_SHEET_CELLS
    text: list[str] | None = None    # the current cell's value, None while it has none
    collecting = in_is = in_rph = False
    n_text = 0

    def start(name, attrs):
        nonlocal row_no, in_row, col, cells, cell, budget, text, collecting, in_is, in_rph, n_text
        tag = _TAGS.get(name)
        if tag == "c":
            in_row += 1
            budget -= 1
            if in_row > MAX_COLS:
                raise _Unreadable(_file_problem(
                    f"该行有超过 {MAX_COLS} 个单元格(含只设置了格式的空白单元格),无法读取:"
                    "请删除表格右侧多余的列,或另存为 CSV 后重新上传", row=row_no))
            if budget < 0:
                raise _Unreadable(_file_problem(_too_many_cells()))
            ref = attrs.get("r")
            col = (_column_index(ref.rstrip(_DIGITS)) if ref else 0) or col + 1
            cell, text, n_text = attrs, None, 0
        elif tag == "row":
            budget -= 1
            if budget < 0:
                raise _Unreadable(_file_problem(_too_many_cells()))
            r = attrs.get("r")
            row_no = int(r) if r else row_no + 1   # not a number: the file is broken (caught below)
            if not 0 < row_no <= _MAX_EXCEL_ROW:
                raise _Unreadable(_file_problem(f"工作表的行号「{r}」超出 Excel 的范围,文件可能已损坏"))
            cells, in_row, col = None, 0, 0
        elif tag == "v":
            text, collecting = [], True
        elif tag == "is":
            text, in_is = [], True
        elif tag == "t":
            collecting = in_is and not in_rph
        elif tag == "rPh":
            in_rph = True

    def chars(data):
        nonlocal n_text
        if collecting:
            n_text += len(data)
            if n_text > MAX_CELL_CHARS:
                raise _Unreadable(_file_problem(f"单元格内容超过 {MAX_CELL_CHARS} 个字符,无法读取",
                                                row=row_no, column=_column_letters(col)))
            text.append(data)

    def end(name):
        nonlocal cells, text, collecting, in_is, in_rph
        tag = _TAGS.get(name)
        if tag == "c":
            if text is not None:
                style = cell.get("s")
                value = book.text(cell.get("t", "n"), "".join(text), int(style) if style else 0)
                if value:
                    if col > MAX_COLS:
                        raise _Unreadable(_file_problem(
                            f"第{col}列有内容,超出可读取的 {MAX_COLS} 列:请删除表格右侧多余的内容后重新上传",
                            row=row_no, column=_column_letters(col), value=value[:50]))
                    if cells is None:
                        cells = {}
                    cells[col - 1] = value
                text = None
        elif tag == "row":
            if cells:
                rows.append((row_no, cells))
                if len(rows) > MAX_ROWS + 1:
                    raise _Unreadable(_file_problem(f"工作表超过 {MAX_ROWS} 行,请拆分后上传"))
        elif tag == "v" or tag == "t":
            collecting = False
        elif tag == "is":
            in_is = False
        elif tag == "rPh":
            in_rph = False

    def no_dtd(*_):
        raise _Unreadable(_file_problem("Excel 文件中含有 DTD 声明,不是正常的 .xlsx 文件"))

    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, chars
    parser.StartDoctypeDeclHandler = parser.EntityDeclHandler = no_dtd
    fed = 0
    try:
        with source:
            while chunk := source.read(1 << 20):
                fed += len(chunk)
                if fed > MAX_SHEET_BYTES:
                    raise _Unreadable(_file_problem(f"工作表解压后超过 {MAX_SHEET_BYTES // 2**20} MB,无法读取:"
                                                    "请拆分文件或另存为 CSV 后重新上传"))
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except _Unreadable:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed XML, a bad shared-string index, a bad CRC …
        raise _Unreadable(_file_problem(f"无法读取 Excel 文件的第一个工作表(文件可能已损坏):{type(exc).__name__}")) from None
    return rows


def _too_many_cells() -> str:
    return (f"工作表的单元格超过 {MAX_SHEET_CELLS:,} 个(含只设置了格式的空白单元格),无法读取:"
            "请删除多余的行和列、拆分文件,或另存为 CSV 后重新上传")


# -- the table ---------------------------------------------------------------------------------------
def _dense(cells: dict[int, str]) -> list[str]:
    row = [""] * (max(cells) + 1)
    for j, v in cells.items():
        row[j] = v
    return row


_HEAD_RECORDS = 10


def _header_at(head: list[list[str]], header_keys) -> int:
    """Which of the first non-blank records is the header: the first naming a ``header_keys``
    column (a title line above it is tolerated), else the first."""
    return next((k for k, r in enumerate(head) if any(header_key(c) in header_keys for c in r)), 0)


def _tabulate(table: Table, records: list, header_keys) -> None:
    """Fill ``table`` from its non-blank records (row number, cells as a list, or a dict for XLSX).

    The header is found among the first ten (:func:`_header_at`). The table is as wide as the
    header's last title; data further right is only noted in ``table.stray``.
    """
    if not records:
        raise _Unreadable(_file_problem("文件中没有任何内容"))
    head = [(n, _dense(r) if isinstance(r, dict) else r) for n, r in records[:_HEAD_RECORDS]]
    at = _header_at([r for _, r in head], header_keys)
    header_row, header = head[at]
    width = max((j + 1 for j, h in enumerate(header) if h), default=0)
    if width > MAX_COLS:
        raise _Unreadable(_file_problem(f"表头超过 {MAX_COLS} 列,无法读取", row=header_row))
    body = records[at + 1:]
    if len(body) * width > MAX_CELLS:
        raise _Unreadable(_file_problem(f"表格超过 {MAX_CELLS:,} 个单元格({len(body)}行 × {width}列),"
                                        "请拆分后上传"))
    table.header, table.header_row = header[:width], header_row
    table.row_numbers = np.array([n for n, _ in body], dtype=np.int64)
    lines = [r for _, r in body]
    stray: set[int] = set()
    if width and all(type(r) is list and len(r) == width for r in lines):
        cells = np.array(lines, dtype=object)     # the usual CSV: every row as wide as the header
    else:
        cells = np.empty((len(body), width), dtype=object)
        cells[:] = ""
        for k, r in enumerate(lines):
            if isinstance(r, dict):
                for j, v in r.items():
                    if j < width:
                        cells[k, j] = v
                    else:
                        stray.add(j)
            else:
                m = min(len(r), width)
                cells[k, :m] = r[:m]
                if len(r) > width:
                    stray.update(j for j in range(width, len(r)) if r[j])
    cells = cells.reshape(len(body), width)
    table.columns = [pa.array(cells[:, j], pa.string()) for j in range(width)]
    table.cells = cells
    table.stray = sorted(stray)


def read_upload(data: bytes, file_name: str, header_keys=frozenset()) -> Table:
    """Read an upload into a :class:`Table`; every failure is a problem in ``table.problems``."""
    table = Table(file_name=file_name)
    ext = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    try:
        if len(data) > MAX_BYTES:
            raise _Unreadable(_file_problem(f"文件过大({len(data) / 1024 / 1024:.1f} MB),上限为 20 MB"))
        if not data.strip():
            raise _Unreadable(_file_problem("文件为空"))
        if data.startswith(b"\xd0\xcf\x11\xe0"):
            raise _Unreadable(_file_problem("不支持旧版 Excel(.xls)文件:请在 Excel 中另存为 .xlsx 或 CSV 后上传"))
        if data.startswith(b"PK\x03\x04") or ext in ("xlsx", "xlsm"):
            if not zipfile.is_zipfile(io.BytesIO(data)):
                raise _Unreadable(_file_problem("文件扩展名为 .xlsx,但内容不是有效的 Excel 文件"))
            table.kind = "xlsx"
            records = _xlsx_rows(data)
            _tabulate(table, records, header_keys)
        else:
            table.kind = "csv"
            _read_csv(data, table, header_keys)
    except _Unreadable as stop:
        table.problems.append(stop.problem)
    return table
