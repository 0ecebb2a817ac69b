"""A spreadsheet export turned into records with the line each starts on, or a clear refusal.

What spreadsheets really write, and what this module does with it:

* Excel "CSV UTF-8": UTF-8 with a BOM, CRLF rows, LF inside quoted cells. Read.
* Google Sheets, LibreOffice, most web tools: UTF-8 without a BOM. Read.
* Excel "Unicode Text": UTF-16 with a BOM, tab-separated. Read: the BOM makes the
  encoding certain.
* Excel on a continental-European PC: semicolon-separated, sometimes with a
  ``sep=;`` first line. Read: the heading line shows the separator without doubt.
* Excel plain "CSV (Comma delimited)": Windows-1252 (or another code page).
  Refused, naming the line and byte: the same bytes mean different letters in
  different code pages, and guessing would store wrong names without a word.
* A workbook (.xlsx/.ods/.xls) renamed or chosen by mistake: refused, saying so.
* A quote that is never closed, or closed in the wrong place, makes later rows
  part of one cell. The reader is strict about quotes, so such rows are named
  rather than silently lost.

Line numbers are physical lines, as a text editor counts them (CR, LF or CRLF
each end one), and a record's number is the line where it starts.

The file is read whole before decoding: an encoding error can then name its line
and byte, and a 100,000-person list is only a few megabytes.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from foundation.errors import RecipientError

SAVE_AS_UTF8 = 'in Excel use File > Save As > "CSV UTF-8 (Comma delimited) (*.csv)"; elsewhere, export as CSV in UTF-8'
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_SEP_LINE = re.compile(r"^sep=(.)$", re.IGNORECASE)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# One cell at most. The csv module itself is given no limit: its own error cannot tell a huge cell from a
# quote that is never closed, and only the second must refuse the whole file.
CELL_LIMIT = 1_000_000


@dataclass(frozen=True)
class Record:
    start: int  # the line the record starts on
    end: int  # the line it ends on (later than start when a quoted cell holds line breaks)
    cells: list[str] | None  # None when the quoting is broken: see ``problem``
    problem: str | None = None


@dataclass
class Table:
    path: Path
    encoding: str  # in words, for the report
    delimiter: str
    header: list[str]
    header_line: int
    text: str

    @property
    def width(self) -> int:
        """Named columns: the heading line without the empty cells spreadsheets add at its end."""
        named = len(self.header)
        while named and not self.header[named - 1].strip():
            named -= 1
        return named

    @property
    def described(self) -> str:
        return f"{self.encoding}, {DELIMITER_NAMES[self.delimiter]}-separated"

    def records(self) -> Iterator[Record]:
        """Every record after the heading line, blank ones included (the caller skips them)."""
        stream = io.StringIO(self.text, newline="")
        reader = csv.reader(stream, delimiter=self.delimiter, strict=True)
        lines: list[str] | None = None
        for _ in range(self.header_line):
            next(reader)
        end = reader.line_num
        while True:
            start = end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = reader.line_num
                if "unexpected end of data" in str(exc):
                    raise RecipientError(
                        f"a quote opened on line {start} is never closed, so lines {start}-{end} would be one cell",
                        where=f"{self.path}, line {start}",
                        hint="close the quote, or remove it; nothing was imported",
                    ) from None
                yield Record(start, end, None, "a quote ends in the middle of a cell; put the whole cell in quotes "
                             "and double each quote inside it, e.g. \"Anne \"\"Jo\"\" Smith\"")
                continue
            end = reader.line_num
            problem = None
            biggest = max((len(cell) for cell in cells), default=0)
            if biggest > CELL_LIMIT:
                yield Record(start, end, None, f"a cell holds {biggest:,} characters, over the limit of "
                             f"{CELL_LIMIT:,} for one cell; shorten it")
                continue
            if end > start:
                lines = lines if lines is not None else _LINE_BREAK.split(self.text)
                problem = self._swallowed_row(lines, start, end)
            yield Record(start, end, cells, problem)

    def _swallowed_row(self, lines: list[str], start: int, end: int) -> str | None:
        """A line inside a multi-line record that reads as a full row of its own was eaten by a stray quote."""
        for number in range(start + 1, end):
            inner = lines[number - 1]
            try:
                cells = next(csv.reader([inner], delimiter=self.delimiter, strict=True), [])
            except csv.Error:
                continue
            if len(cells) >= self.width and "@" in inner:
                return (f"lines {start}-{end} were read as one record because of a quote on line {start}, "
                        f"but line {number} looks like a row of its own; fix the quoting")
        return None


def read_table(path: Path) -> Table:
    """Decode the file and find its heading line and separator; RecipientError when that is impossible."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RecipientError("no such file", where=str(path)) from None
    except IsADirectoryError:
        raise RecipientError("this is a folder, not a CSV file", where=str(path)) from None
    except OSError as exc:
        raise RecipientError(f"cannot read the file: {exc.strerror}", where=str(path)) from None
    text, encoding = _decode(path, data)
    csv.field_size_limit(sys.maxsize)  # CELL_LIMIT is checked per record, where the line can be named
    header_line = 1
    first = _LINE_BREAK.split(text, maxsplit=1)[0]
    explicit = _SEP_LINE.match(first.strip())
    if explicit:  # Excel's own hint line, e.g. "sep=;"
        delimiter, header_line = explicit.group(1), 2
        first = (_LINE_BREAK.split(text, maxsplit=2) + [""])[1]
    else:
        delimiter = _guess_delimiter(first)
    if delimiter not in DELIMITER_NAMES:
        raise RecipientError(f"the 'sep=' line names {delimiter!r} as the separator", where=f"{path}, line 1",
                             hint="use commas, semicolons or tabs")
    header = next(csv.reader([first], delimiter=delimiter), [])
    if not any(cell.strip() for cell in header):
        raise RecipientError("the file is empty; its first line must name the columns", where=str(path),
                             hint="e.g. email,first_name,last_name,consent_at,consent_source,consent_text")
    return Table(path, encoding, delimiter, header, header_line, text)


def _guess_delimiter(first_line: str) -> str:
    """The separator that splits the heading line into the most cells; a tie goes to the comma."""
    best, best_count = ",", 1
    for delimiter in DELIMITER_NAMES:
        count = len(next(csv.reader([first_line], delimiter=delimiter), []))
        if count > best_count:
            best, best_count = delimiter, count
    return best


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    if data.startswith(b"PK\x03\x04"):
        raise RecipientError("this is a spreadsheet workbook (.xlsx or .ods), not a CSV file", where=str(path),
                             hint=SAVE_AS_UTF8)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise RecipientError("this is an old Excel workbook (.xls), not a CSV file", where=str(path),
                             hint=SAVE_AS_UTF8)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError as exc:
            raise RecipientError(f"the file starts as UTF-16 but byte {exc.start} is broken", where=str(path),
                                 hint=SAVE_AS_UTF8) from None
    head = data[:400]
    if head and head.count(0) * 4 >= len(head):
        raise RecipientError("the file looks like UTF-16 text without a byte-order mark", where=str(path),
                             hint=SAVE_AS_UTF8)
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8-sig"), "UTF-8 with BOM" if bom else "UTF-8"
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, data, exc.start) from None


def _not_utf8(path: Path, data: bytes, offset: int) -> RecipientError:
    """Name the line, the byte, and what it would be in Excel's usual Windows code page, to help find it."""
    line_start = max(data.rfind(b"\n", 0, offset), data.rfind(b"\r", 0, offset)) + 1
    line = data[:offset].count(b"\n") + data[:offset].replace(b"\r\n", b"").count(b"\r") + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    byte = data[offset]
    word_start = max(data.rfind(sep, line_start, offset) for sep in (b",", b";", b"\t", b" ")) + 1
    word_end = min([i for i in (data.find(sep, offset) for sep in (b",", b";", b"\t", b"\r", b"\n", b" ")) if i != -1]
                   or [len(data)])
    guess = data[max(word_start, line_start):word_end].decode("cp1252", errors="replace")
    return RecipientError(
        f"the file is not UTF-8: column {column} holds the byte 0x{byte:02X}, which in Windows-1252 "
        f"(Excel's plain \"CSV (Comma delimited)\") would make the cell {guess!r}",
        where=f"{path}, line {line}",
        hint=f"save the file as UTF-8 so names keep their accents: {SAVE_AS_UTF8}",
    )
