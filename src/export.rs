//! Typed tables: every table the TUK or the UPT exports (login cards, attendance, score
//! recap, minutes, every UPT report) declares each column's type **once**, in a
//! [`Column`], and the CSV, CSV-for-Excel, XLSX and HTML renderings follow that declaration.
//!
//! A row holds each cell as the canonical text of its column's type (see [`Kind`]); the
//! renderings never guess a type from a cell's text: a text column is written as text even
//! when a cell reads `1E3`, `TRUE`, `Nan` or `0012345`, and a decimal column is written as
//! a number with its places. The column names (`name`) are the stable machine names of
//! `docs/reports.md` (CSV header); the labels (`label`) are the Indonesian headers of the
//! XLSX sheet and the printed pages.

use anyhow::{Result, anyhow};
use maud::{Markup, html};
use rust_xlsxwriter::{ExcelDateTime, Format, FormatAlign, Workbook, Worksheet, XlsxError};

/// The type of a column, and the canonical text of its cells (an empty cell is always
/// allowed and means "no value").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Any text: identifiers, names, passwords, participant numbers. Always text.
    Text,
    /// A whole number: `12`, `-3`.
    Integer,
    /// A decimal number with this many places, written with a dot: `81.25`.
    Decimal(u8),
    /// A real number without fixed places (p-values, e.g. `0.031234` or `1.2345e-6`).
    Number,
    /// A date and time in the package's time zone: `2026-11-24 08:02:03`.
    DateTime,
    /// Yes or no: `yes`/`no` (the UPT's reports) or `ya`/`tidak` (the TUK's pages).
    YesNo,
}

/// One column: machine name (CSV header), Indonesian label (XLSX header, printed pages)
/// and type.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) kind: Kind,
}

impl Column {
    pub(crate) const fn new(name: &'static str, label: &'static str, kind: Kind) -> Self {
        Self { name, label, kind }
    }
    pub(crate) const fn text(name: &'static str, label: &'static str) -> Self {
        Self::new(name, label, Kind::Text)
    }
    pub(crate) const fn int(name: &'static str, label: &'static str) -> Self {
        Self::new(name, label, Kind::Integer)
    }
    pub(crate) const fn dec(name: &'static str, label: &'static str, places: u8) -> Self {
        Self::new(name, label, Kind::Decimal(places))
    }
    pub(crate) const fn num(name: &'static str, label: &'static str) -> Self {
        Self::new(name, label, Kind::Number)
    }
    pub(crate) const fn time(name: &'static str, label: &'static str) -> Self {
        Self::new(name, label, Kind::DateTime)
    }
    pub(crate) const fn yes_no(name: &'static str, label: &'static str) -> Self {
        Self::new(name, label, Kind::YesNo)
    }
}

/// Text columns whose label is their name (tables that are all identifiers and raw text,
/// e.g. the convenience CSVs inside a sealed bundle).
pub(crate) fn texts(names: &[&'static str]) -> Vec<Column> {
    names.iter().map(|n| Column::text(n, n)).collect()
}

/// A table: typed columns and rows of cells (canonical text per [`Kind`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct TypedTable {
    pub(crate) columns: Vec<Column>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl TypedTable {
    /// The machine names of the columns, in order.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.name).collect()
    }
}

/// Who issues a sheet: printed above every A4 page and in the XLSX page header.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Letterhead {
    /// e.g. `TUK SMK Negeri 1 Contoh`
    pub(crate) name: String,
    /// Street, town, phone: one line.
    pub(crate) address: String,
    /// The head of the TUK (Kepala TUK) or of the UPT, who signs.
    pub(crate) head: String,
    /// The head's NIP (civil-servant number); empty when not a civil servant.
    pub(crate) head_nip: String,
    /// Optional logo: a PNG or JPEG file (at most 512 KiB), shown left of the name.
    pub(crate) logo: String,
}

impl Letterhead {
    /// True when nothing has been set.
    pub(crate) fn is_empty(&self) -> bool {
        self.name.trim().is_empty() && self.address.trim().is_empty()
    }

    /// The town for "Sleman, Selasa, 24 November 2026" above signatures: the last part of
    /// the address (split at commas) that has no digit; empty when there is none.
    pub(crate) fn town(&self) -> String {
        self.address
            .split(',')
            .map(str::trim)
            .rfind(|p| !p.is_empty() && !p.chars().any(|c| c.is_ascii_digit()))
            .unwrap_or("")
            .to_string()
    }

    /// The logo as a `data:` URL for an `<img>`, when a logo file is set and readable.
    pub(crate) fn logo_data_url(&self) -> Option<String> {
        use base64::Engine as _;
        let path = self.logo.trim();
        if path.is_empty() {
            return None;
        }
        let bytes = std::fs::read(path).ok().filter(|b| b.len() <= 512 * 1024)?;
        let mime = if bytes.starts_with(b"\x89PNG") {
            "image/png"
        } else if bytes.starts_with(&[0xff, 0xd8]) {
            "image/jpeg"
        } else {
            return None;
        };
        Some(format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    /// The letterhead block of a printed page (empty when nothing is set).
    pub(crate) fn html(&self) -> Markup {
        html! {
            @if !self.is_empty() {
                div.letterhead {
                    @if let Some(src) = self.logo_data_url() { img.logo src=(src) alt="Logo"; }
                    div {
                        p.lhname { (self.name) }
                        @if !self.address.trim().is_empty() { p.lhaddr { (self.address) } }
                    }
                }
            }
        }
    }
}

/// Which CSV: plain (comma, decimal dot; for scripts) or for an Indonesian Excel
/// (semicolon, decimal comma).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Comma,
    Excel,
}

impl Dialect {
    /// `?format=csv` → Comma, `?format=csv-excel` → Excel.
    pub(crate) fn from_format(f: &str) -> Option<Self> {
        match f {
            "csv" => Some(Self::Comma),
            "csv-excel" => Some(Self::Excel),
            _ => None,
        }
    }
}

/// The UTF-8 byte-order mark every CSV starts with, so that Excel reads UTF-8.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// True when a cell is a valid value of its kind (empty cells are valid everywhere).
fn valid(kind: Kind, cell: &str) -> bool {
    if cell.is_empty() {
        return true;
    }
    match kind {
        Kind::Text => true,
        Kind::Integer => cell.parse::<i64>().is_ok(),
        Kind::Decimal(_) | Kind::Number => cell.parse::<f64>().is_ok_and(f64::is_finite),
        Kind::DateTime => parse_datetime(cell).is_some(),
        Kind::YesNo => yes_no(cell).is_some(),
    }
}

fn yes_no(cell: &str) -> Option<bool> {
    match cell {
        "yes" | "ya" => Some(true),
        "no" | "tidak" => Some(false),
        _ => None,
    }
}

/// `YYYY-MM-DD HH:MM:SS` → (y, m, d, h, min, s).
fn parse_datetime(cell: &str) -> Option<(u16, u8, u8, u16, u8, u8)> {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let t = time::PrimitiveDateTime::parse(cell, &fmt).ok()?;
    Some((
        u16::try_from(t.year()).ok()?,
        t.month() as u8,
        t.day(),
        t.hour() as u16,
        t.minute(),
        t.second(),
    ))
}

/// OWASP's CSV-injection rule: a cell that starts with `=`, `+`, `-`, `@`, tab or carriage
/// return gets a leading `'` so that a spreadsheet shows it as text instead of running it.
/// Numbers of a numeric column (e.g. `-1.25`) are values, not formulas, and stay as they are.
pub(crate) fn neutralise(kind: Kind, cell: &str) -> String {
    let numeric = matches!(kind, Kind::Integer | Kind::Decimal(_) | Kind::Number);
    if numeric && valid(kind, cell) {
        return cell.to_string();
    }
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

/// The CSV text of one cell in a dialect (neutralised; decimal comma for Excel).
fn csv_cell(kind: Kind, cell: &str, d: Dialect) -> String {
    let c = neutralise(kind, cell);
    let numeric = matches!(kind, Kind::Decimal(_) | Kind::Number);
    if d == Dialect::Excel && numeric && valid(kind, cell) {
        c.replace('.', ",")
    } else {
        c
    }
}

/// The table as CSV: a byte-order mark, the header row of machine names, then the rows.
/// Errors only if writing to memory fails.
pub(crate) fn csv_as(t: &TypedTable, d: Dialect) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(if d == Dialect::Excel { b';' } else { b',' })
        .from_writer(BOM.to_vec());
    w.write_record(t.names())?;
    for r in &t.rows {
        w.write_record(
            r.iter()
                .zip(
                    t.columns
                        .iter()
                        .map(|c| c.kind)
                        .chain(std::iter::repeat(Kind::Text)),
                )
                .map(|(cell, k)| csv_cell(k, cell, d)),
        )?;
    }
    w.into_inner().map_err(|e| anyhow!("{e}"))
}

/// The plain CSV (comma, decimal dot), as scripts read it.
pub(crate) fn csv(t: &TypedTable) -> Result<Vec<u8>> {
    csv_as(t, Dialect::Comma)
}

fn xe(e: XlsxError) -> anyhow::Error {
    anyhow!("cannot write the spreadsheet: {e}")
}

/// Escapes `&` for an XLSX header/footer string (where `&` starts a control code).
fn header_text(s: &str) -> String {
    s.replace('&', "&&")
}

/// Column width in Excel characters: the longest of label and cells, between 6 and 60.
fn width(col: &Column, t: &TypedTable, i: usize) -> f64 {
    let longest = t
        .rows
        .iter()
        .filter_map(|r| r.get(i))
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0);
    let min = match col.kind {
        Kind::DateTime => 19,
        _ => 6,
    };
    (longest.max(col.label.chars().count()).max(min) + 2).min(60) as f64
}

/// The table as an XLSX workbook with one sheet: Indonesian header row (bold, frozen,
/// repeated on every printed page), column widths, every cell written with the typed
/// writer of its column's type, A4 paper, and the letterhead and `title` in the page header.
pub(crate) fn xlsx_with(
    t: &TypedTable,
    sheet: &str,
    title: &str,
    lh: &Letterhead,
) -> Result<Vec<u8>> {
    xlsx_build(t, sheet, title, lh, false)
}

/// [`xlsx_with`] with, when a letterhead is set, the letterhead also as **rows above the
/// table** (the UPT's reports): row 1 the name (bold), row 2 the address, row 3 the
/// title, row 4 empty, then the header row (frozen, repeated on printed pages) and the
/// typed cells. Nothing is added when the letterhead is empty, so the table starts at
/// row 1 as before.
pub(crate) fn xlsx_headed(
    t: &TypedTable,
    sheet: &str,
    title: &str,
    lh: &Letterhead,
) -> Result<Vec<u8>> {
    xlsx_build(t, sheet, title, lh, true)
}

/// How many rows [`xlsx_headed`] puts above the header row for this letterhead.
pub(crate) fn head_rows(lh: &Letterhead) -> u32 {
    if lh.is_empty() { 0 } else { 4 }
}

fn xlsx_build(
    t: &TypedTable,
    sheet: &str,
    title: &str,
    lh: &Letterhead,
    rows_above: bool,
) -> Result<Vec<u8>> {
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    // Sheet names: at most 31 characters, none of []:*?/\
    let name: String = sheet
        .chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .take(31)
        .collect();
    ws.set_name(if name.is_empty() { "Sheet1" } else { &name })
        .map_err(xe)?;
    let top = if rows_above { head_rows(lh) } else { 0 };
    if top > 0 {
        let big = Format::new().set_bold().set_font_size(14);
        let bold = Format::new().set_bold();
        let plain = Format::new();
        ws.write_string_with_format(0, 0, lh.name.trim(), &big)
            .map_err(xe)?;
        ws.write_string_with_format(1, 0, lh.address.trim(), &plain)
            .map_err(xe)?;
        ws.write_string_with_format(2, 0, title.trim(), &bold)
            .map_err(xe)?;
    }
    fill(ws, t, top)?;
    ws.set_paper_size(9); // A4
    let mut head = String::new();
    if !lh.name.trim().is_empty() {
        head.push_str(&format!("&L&B{}", header_text(lh.name.trim())));
    }
    if !title.trim().is_empty() {
        head.push_str(&format!("&R{}", header_text(title.trim())));
    }
    // Excel refuses header strings over 255 characters.
    if !head.is_empty() && head.chars().count() <= 255 {
        ws.set_header(head);
    }
    ws.set_footer("&CHalaman &P dari &N");
    book.save_to_buffer().map_err(xe)
}

/// A cell as the spreadsheet value of its column's type.
enum Typed {
    Text,
    Number(f64),
    Date(ExcelDateTime),
    Bool(bool),
}

fn typed(kind: Kind, cell: &str) -> Typed {
    match kind {
        Kind::Text => Typed::Text,
        Kind::Integer => cell
            .parse::<i64>()
            .map_or(Typed::Text, |n| Typed::Number(n as f64)),
        Kind::Decimal(_) | Kind::Number => match cell.parse::<f64>() {
            Ok(n) if n.is_finite() => Typed::Number(n),
            _ => Typed::Text,
        },
        Kind::DateTime => parse_datetime(cell)
            .and_then(|(y, mo, d, h, mi, s)| {
                ExcelDateTime::from_ymd(y, mo, d)
                    .and_then(|x| x.and_hms(h, mi, s))
                    .ok()
            })
            .map_or(Typed::Text, Typed::Date),
        Kind::YesNo => yes_no(cell).map_or(Typed::Text, Typed::Bool),
    }
}

/// Writes the header row at row `top` (0-based) and the cells below it.
fn fill(ws: &mut Worksheet, t: &TypedTable, top: u32) -> Result<()> {
    let bold = Format::new()
        .set_bold()
        .set_text_wrap()
        .set_align(FormatAlign::Top);
    let text = Format::new().set_num_format("@");
    let int = Format::new().set_num_format("0");
    let general = Format::new();
    let date = Format::new().set_num_format("dd/mm/yyyy hh:mm:ss");
    let decs: Vec<Format> = (0..=8u8)
        .map(|p| {
            let f = if p == 0 {
                "0".to_string()
            } else {
                format!("0.{}", "0".repeat(p as usize))
            };
            Format::new().set_num_format(f)
        })
        .collect();
    for (c, col) in t.columns.iter().enumerate() {
        let c16 = u16::try_from(c).map_err(|_| anyhow!("too many columns"))?;
        ws.write_string_with_format(top, c16, col.label, &bold)
            .map_err(xe)?;
        ws.set_column_width(c16, width(col, t, c)).map_err(xe)?;
    }
    for (r, row) in t.rows.iter().enumerate() {
        let r = u32::try_from(r + 1)
            .ok()
            .and_then(|r| r.checked_add(top))
            .ok_or_else(|| anyhow!("too many rows"))?;
        for (c, cell) in row.iter().enumerate() {
            let c16 = u16::try_from(c).map_err(|_| anyhow!("too many columns"))?;
            let kind = t.columns.get(c).map_or(Kind::Text, |col| col.kind);
            if cell.is_empty() {
                continue;
            }
            match typed(kind, cell) {
                Typed::Number(n) => {
                    let f = match kind {
                        Kind::Integer => &int,
                        Kind::Decimal(p) => &decs[usize::from(p.min(8))],
                        _ => &general,
                    };
                    ws.write_number_with_format(r, c16, n, f).map_err(xe)?;
                }
                Typed::Date(dt) => {
                    ws.write_datetime_with_format(r, c16, dt, &date)
                        .map_err(xe)?;
                }
                Typed::Bool(b) => {
                    ws.write_boolean(r, c16, b).map_err(xe)?;
                }
                // Text, and (defensively) a cell that is not a value of its type.
                Typed::Text => {
                    ws.write_string_with_format(r, c16, cell, &text)
                        .map_err(xe)?;
                }
            }
        }
    }
    ws.set_freeze_panes(top + 1, 0).map_err(xe)?;
    ws.set_repeat_rows(top, top).map_err(xe)?;
    Ok(())
}

/// How a cell reads on a page: decimals with a decimal comma, yes/no as ya/tidak.
pub(crate) fn display(kind: Kind, cell: &str) -> String {
    match kind {
        Kind::Decimal(_) | Kind::Number if valid(kind, cell) => cell.replace('.', ","),
        Kind::YesNo => match yes_no(cell) {
            Some(true) => "ya".into(),
            Some(false) => "tidak".into(),
            None => cell.to_string(),
        },
        _ => cell.to_string(),
    }
}

/// The table as an HTML `<table class="print">` with Indonesian headers (repeated on
/// every printed page by the browser: `thead`), numbers aligned right.
pub(crate) fn html_table(t: &TypedTable, class: &str) -> Markup {
    html! {
        table class=(class) {
            thead { tr { @for c in &t.columns { th { (c.label) } } } }
            tbody {
                @for r in &t.rows {
                    tr {
                        @for (i, cell) in r.iter().enumerate() {
                            @let kind = t.columns.get(i).map_or(Kind::Text, |c| c.kind);
                            @if matches!(kind, Kind::Integer | Kind::Decimal(_) | Kind::Number) {
                                td.num { (display(kind, cell)) }
                            } @else {
                                td { (display(kind, cell)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A `Content-Disposition` file name: `[A-Za-z0-9-]` only, the parts and their words joined
/// by `-` (`["berita-acara", "demo-kk-a-2026/S1"]` → `berita-acara-demo-kk-a-2026-S1.xlsx`).
pub(crate) fn file_name(parts: &[&str], ext: &str) -> String {
    let mut out = String::new();
    for p in parts {
        for ch in p.chars() {
            if ch.is_ascii_alphanumeric() {
                out.push(ch);
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let base = out.trim_end_matches('-');
    format!("{}.{ext}", if base.is_empty() { "tabel" } else { base })
}

// ---------------------------------------------------------------------------------------
// Dates and times in words, for printed pages (Indonesian).

const HARI: [&str; 7] = [
    "Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu",
];
const BULAN: [&str; 12] = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
];

fn date_in_words(d: time::Date) -> String {
    format!(
        "{}, {} {} {}",
        HARI[usize::from(d.weekday().number_days_from_monday())],
        d.day(),
        BULAN[usize::from(u8::from(d.month()) - 1)],
        d.year()
    )
}

/// `2026-11-24` → `Selasa, 24 November 2026`; any other text is returned as it is.
pub(crate) fn date_words(date: &str) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(date.trim(), &fmt).map_or_else(|_| date.to_string(), date_in_words)
}

/// The Indonesian zone name of a UTC offset in seconds: WIB (+07:00), WITA (+08:00),
/// WIT (+09:00), else `UTC+hh:mm`.
pub(crate) fn zone_name(offset_s: i32) -> String {
    match offset_s {
        25200 => "WIB".into(),
        28800 => "WITA".into(),
        32400 => "WIT".into(),
        o => {
            let sign = if o < 0 { '-' } else { '+' };
            let a = o.unsigned_abs();
            format!("UTC{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
        }
    }
}

fn local_dt(ms: i64, offset_s: i32) -> Option<time::OffsetDateTime> {
    let off = time::UtcOffset::from_whole_seconds(offset_s).ok()?;
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .map(|t| t.to_offset(off))
}

/// A moment as a clock time in words: `08.41 WIB` (Indonesian style, dot between hours and
/// minutes, the zone name of the offset).
pub(crate) fn clock_words(ms: i64, offset_s: i32) -> String {
    local_dt(ms, offset_s).map_or_else(String::new, |t| {
        format!("{:02}.{:02} {}", t.hour(), t.minute(), zone_name(offset_s))
    })
}

/// A moment's date in words in the given offset: `Selasa, 24 November 2026`.
pub(crate) fn day_words(ms: i64, offset_s: i32) -> String {
    local_dt(ms, offset_s).map_or_else(String::new, |t| date_in_words(t.date()))
}

/// A duration in words, rounded to whole minutes (at least 1): `1 menit`, `1 jam 5 menit`.
pub(crate) fn minutes_words(ms: i64) -> String {
    let m = ((ms.max(0) + 30_000) / 60_000).max(1);
    match (m / 60, m % 60) {
        (0, m) => format!("{m} menit"),
        (h, 0) => format!("{h} jam"),
        (h, m) => format!("{h} jam {m} menit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TypedTable {
        TypedTable {
            columns: vec![
                Column::text("participant", "No. peserta"),
                Column::dec("score", "Nilai", 2),
                Column::num("t", "t"),
            ],
            rows: vec![vec![
                "=HYPERLINK(\"x\")".into(),
                "81.25".into(),
                "-1.5".into(),
            ]],
        }
    }

    #[test]
    fn csv_has_bom_neutralises_and_keeps_negative_numbers() {
        let s = String::from_utf8(csv(&t()).unwrap()).unwrap();
        assert_eq!(
            s,
            "\u{feff}participant,score,t\n\"'=HYPERLINK(\"\"x\"\")\",81.25,-1.5\n"
        );
        let e = String::from_utf8(csv_as(&t(), Dialect::Excel).unwrap()).unwrap();
        assert_eq!(
            e,
            "\u{feff}participant;score;t\n\"'=HYPERLINK(\"\"x\"\")\";81,25;-1,5\n"
        );
        for bad in ["+1", "-x", "@SUM(A1)", "\tx", "\rx"] {
            assert!(neutralise(Kind::Text, bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(neutralise(Kind::Integer, "-3"), "-3");
        assert_eq!(neutralise(Kind::Integer, "-x"), "'-x");
    }

    /// Cells that a spreadsheet would take for numbers, booleans or errors stay text, read
    /// back with a real XLSX reader (calamine); typed columns come back typed.
    #[test]
    fn xlsx_text_stays_text_and_types_are_kept() {
        use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
        let tricky = [
            "25923e25", "0012345", "12345678", "1E3", "TRUE", "Nan", "Inf", "-0", "=1+1",
        ];
        let t = TypedTable {
            columns: vec![
                Column::text("password", "Kata sandi"),
                Column::dec("score", "Nilai", 2),
                Column::time("at", "Waktu"),
                Column::yes_no("ok", "Lulus"),
                Column::int("n", "Jumlah"),
            ],
            rows: tricky
                .iter()
                .map(|c| {
                    vec![
                        c.to_string(),
                        "70.50".into(),
                        "2026-11-24 08:41:00".into(),
                        "yes".into(),
                        "3".into(),
                    ]
                })
                .collect(),
        };
        let bytes = xlsx_with(&t, "t", "", &Letterhead::default()).unwrap();
        let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let r = wb.worksheet_range_at(0).unwrap().unwrap();
        let rows: Vec<_> = r.rows().collect();
        assert_eq!(rows[0][0], Data::String("Kata sandi".into()));
        for (i, c) in tricky.iter().enumerate() {
            let row = rows[i + 1];
            assert_eq!(row[0], Data::String(c.to_string()), "{c}");
            assert_eq!(row[1], Data::Float(70.5));
            // A real Excel date at the local time written (no shift to UTC).
            match &row[2] {
                Data::DateTime(d) => assert!((d.as_f64() - 46350.361805555556).abs() < 1e-6),
                other => panic!("{other:?} is not a date"),
            }
            assert_eq!(row[3], Data::Bool(true));
            assert_eq!(row[4], Data::Float(3.0));
        }
    }

    /// The UPT's XLSX: letterhead rows above the header; the cells keep their types; no
    /// rows when there is no letterhead.
    #[test]
    fn xlsx_headed_puts_the_letterhead_above_the_table() {
        use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
        let read = |bytes: Vec<u8>| {
            let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
            wb.worksheet_range_at(0).unwrap().unwrap()
        };
        let lh = Letterhead {
            name: "UPT Contoh".into(),
            address: "Jl. Contoh 1, Yogyakarta".into(),
            ..Letterhead::default()
        };
        let r = read(xlsx_headed(&t(), "recap", "Rekap nilai peserta", &lh).unwrap());
        let cell = |row: usize, col: usize| r.get((row, col)).cloned().unwrap_or(Data::Empty);
        assert_eq!(cell(0, 0), Data::String("UPT Contoh".into()));
        assert_eq!(cell(1, 0), Data::String("Jl. Contoh 1, Yogyakarta".into()));
        assert_eq!(cell(2, 0), Data::String("Rekap nilai peserta".into()));
        assert_eq!(cell(3, 0), Data::Empty);
        assert_eq!(cell(4, 0), Data::String("No. peserta".into()));
        assert_eq!(cell(5, 0), Data::String("=HYPERLINK(\"x\")".into()));
        assert_eq!(cell(5, 1), Data::Float(81.25));
        let plain = read(xlsx_headed(&t(), "recap", "Rekap", &Letterhead::default()).unwrap());
        assert_eq!(plain.get((0, 0)), Some(&Data::String("No. peserta".into())));
    }

    #[test]
    fn dates_and_times_in_words() {
        assert_eq!(date_words("2026-11-23"), "Senin, 23 November 2026");
        assert_eq!(date_words("besok"), "besok");
        // 2026-11-24 01:41:00 UTC
        let ms = 1_795_484_460_000;
        assert_eq!(clock_words(ms, 7 * 3600), "08.41 WIB");
        assert_eq!(clock_words(ms, 8 * 3600), "09.41 WITA");
        assert_eq!(day_words(ms, 9 * 3600), "Selasa, 24 November 2026");
        assert_eq!(zone_name(0), "UTC+00:00");
        assert_eq!(minutes_words(60_208), "1 menit");
        assert_eq!(minutes_words(3_900_000), "1 jam 5 menit");
    }

    #[test]
    fn file_names_say_what_and_which_session() {
        assert_eq!(
            file_name(&["berita-acara", "demo-kk-a-2026/S1"], "xlsx"),
            "berita-acara-demo-kk-a-2026-S1.xlsx"
        );
        assert_eq!(file_name(&["", "§"], "csv"), "tabel.csv");
    }
}
