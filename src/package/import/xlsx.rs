//! The Excel item bank: one row per item on the first sheet (`Soal`), and the empty
//! template `tuk package template -o bank.xlsx` writes.
//!
//! Row 1 holds the column names [`COLUMNS`] (in this order); every later row is one item.
//! Empty rows are skipped, and so is a row whose `id` starts with `#` (the template's
//! example row). Cells are plain text unless they start with `<`, then they are item HTML
//! (checked like any other). `key` is a letter (`A`), several letters for a `multiple`
//! item (`A,C`), or `Benar`/`Salah` for a `truefalse` item, whose option cells stay empty.
//! `image` names a file in the package's `media/` folder, shown under the stem with
//! `image_alt` as its text. Formulas are read by the value Excel saved with them; a formula
//! without a saved value is refused. An empty `id` is generated ([`super::generated_id`]).

use std::io::Cursor;

use anyhow::{Result, bail};
use calamine::{Data, Reader, Xlsx};
use rust_xlsxwriter::{
    DataValidation, DataValidationErrorStyle, DataValidationRule, Format, Workbook,
};

use super::{generated_id, option_id, text_or_html};
use crate::package::model::{Item, ItemKind, ItemOption, TestSpec};

/// The columns of the item sheet, in order.
pub const COLUMNS: [&str; 15] = [
    "id",
    "type",
    "competency",
    "indicator",
    "pool",
    "weight",
    "stem",
    "a",
    "b",
    "c",
    "d",
    "e",
    "key",
    "image",
    "image_alt",
];
const COL_A: usize = 7;
/// The name of the item sheet the template writes (any first sheet is read).
pub(crate) const SHEET: &str = "Soal";

/// Reads the item sheet of an xlsx file. Errors start with ", row N" (the caller puts the
/// file name in front).
pub fn read(bytes: &[u8], prefix: &str, test: &TestSpec) -> Result<Vec<Item>> {
    let _ = test;
    super::check_zip(bytes).map_err(|e| anyhow::anyhow!(": {e}"))?;
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| {
        anyhow::anyhow!(
            ": not a readable .xlsx file ({e}); save it from Excel as \"Excel Workbook (.xlsx)\""
        )
    })?;
    let sheet = book
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!(": the workbook has no sheet"))?;
    let range = book
        .worksheet_range(&sheet)
        .map_err(|e| anyhow::anyhow!(", sheet {sheet:?}: cannot be read ({e})"))?;
    let formulas = book.worksheet_formula(&sheet).ok();
    let Some((row0, col0)) = range.start() else {
        bail!(", sheet {sheet:?}: the sheet is empty; row 1 must name the columns");
    };
    let cell = |r: u32, c: usize| -> Result<String> {
        let (r, c) = (r, c as u32);
        let v = range.get_value((r, c)).unwrap_or(&Data::Empty);
        let at = || {
            format!(
                ", row {}, column {}",
                r + 1,
                COLUMNS.get(c as usize).unwrap_or(&"?")
            )
        };
        Ok(match v {
            Data::String(s) => s.clone(),
            Data::Int(i) => i.to_string(),
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
            Data::Float(f) => f.to_string(),
            Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            Data::Error(e) => bail!(
                "{}: the cell shows the error {e}; fix the formula or type the value",
                at()
            ),
            Data::DateTime(_) | Data::DateTimeIso(_) | Data::DurationIso(_) => {
                bail!(
                    "{}: Excel stored a date or time here; format the column as Text and type the value again",
                    at()
                )
            }
            Data::Empty => {
                let has_formula = formulas
                    .as_ref()
                    .and_then(|f| f.get_value((r, c)))
                    .is_some_and(|f| !f.is_empty());
                if has_formula {
                    bail!(
                        "{}: a formula without a saved value; open the file in Excel or LibreOffice and save it again, or type the value",
                        at()
                    );
                }
                String::new()
            }
        })
    };
    if col0 != 0 || row0 != 0 {
        bail!(", row 1: the column names must start in cell A1");
    }
    let header: Vec<String> = (0..COLUMNS.len())
        .map(|c| cell(0, c).map(|s| s.trim().to_lowercase()))
        .collect::<Result<_>>()?;
    if header != COLUMNS {
        bail!(
            ", row 1: the columns must be exactly {} (start from `tuk package template`)",
            COLUMNS.join(", ")
        );
    }
    let (rows, _) = range.get_size();
    let mut items = Vec::new();
    for r in 1..rows as u32 {
        let f: Vec<String> = (0..COLUMNS.len())
            .map(|c| cell(r, c).map(|s| s.trim().to_string()))
            .collect::<Result<_>>()?;
        if f.iter().all(|s| s.is_empty()) || f[0].starts_with('#') {
            continue;
        }
        let n = items.len() + 1;
        let item = row_item(&f, prefix, n).map_err(|e| anyhow::anyhow!(", row {}: {e}", r + 1))?;
        items.push(item);
    }
    Ok(items)
}

fn row_item(f: &[String], prefix: &str, n: usize) -> Result<Item> {
    let kind = match f[1].to_lowercase().as_str() {
        "single" => ItemKind::Single,
        "multiple" => ItemKind::Multiple,
        "truefalse" => ItemKind::Truefalse,
        "" => bail!("type is empty; write single, multiple or truefalse"),
        t => bail!("type {t:?} is not single, multiple or truefalse"),
    };
    let weight = if f[5].is_empty() {
        1.0
    } else {
        f[5].replace(',', ".")
            .parse::<f64>()
            .map_err(|_| anyhow::anyhow!("weight {:?} is not a number", f[5]))?
    };
    let mut stem = text_or_html(&f[6]);
    if !f[13].is_empty() {
        let alt = super::plain_to_html(&f[14]);
        stem.push_str(&format!("<br><img alt=\"{alt}\" src=\"media/{}\">", f[13]));
    }
    let cells = &f[COL_A..COL_A + 5];
    let mut options = Vec::new();
    if kind == ItemKind::Truefalse {
        if cells.iter().any(|c| !c.is_empty()) {
            bail!(
                "a truefalse item leaves the option columns a-e empty (its options are Benar and Salah)"
            );
        }
    } else {
        let last = cells
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |p| p + 1);
        for (i, c) in cells[..last].iter().enumerate() {
            if c.is_empty() {
                bail!(
                    "option {} is empty but a later option is filled; fill the options from column a without gaps",
                    (b'A' + i as u8) as char
                );
            }
            options.push(ItemOption {
                id: option_id(i),
                html: text_or_html(c),
            });
        }
    }
    let key = parse_key(&f[12], kind)?;
    Ok(Item {
        id: if f[0].is_empty() {
            generated_id(prefix, n)
        } else {
            f[0].clone()
        },
        test: String::new(),
        kind,
        competency: f[2].clone(),
        indicator: f[3].clone(),
        pool: f[4].clone(),
        weight,
        stem,
        options,
        key,
        partial_credit: false,
    })
}

/// `A`, `A,C`, `A C`, `AC` → `["a", "c"]`; `Benar`/`Salah` for true/false.
fn parse_key(key: &str, kind: ItemKind) -> Result<Vec<String>> {
    let k = key.trim().to_lowercase();
    if k.is_empty() {
        bail!("key is empty; write the letter of the correct option");
    }
    if kind == ItemKind::Truefalse {
        return match k.as_str() {
            "benar" | "salah" => Ok(vec![k]),
            _ => bail!("the key of a truefalse item is Benar or Salah, not {key:?}"),
        };
    }
    let mut out = Vec::new();
    for c in k.chars().filter(|c| !matches!(c, ',' | ';' | ' ' | '/')) {
        if !('a'..='e').contains(&c) {
            bail!("key {key:?} is not a letter A-E (several letters for a multiple item: A,C)");
        }
        out.push(c.to_string());
    }
    Ok(out)
}

/// Writes the empty template: the item sheet with its column names, one example row
/// (id `#CONTOH-01`, never built), drop-down lists for `type` and `key`, and the
/// instructions (in Indonesian) on a second sheet.
pub fn template() -> Result<Vec<u8>> {
    let x = |e: rust_xlsxwriter::XlsxError| anyhow::anyhow!("cannot write the template: {e}");
    let mut book = Workbook::new();
    let bold = Format::new().set_bold().set_background_color("#DDEBF7");
    let wrap = Format::new().set_text_wrap();
    let example = Format::new().set_text_wrap().set_italic();
    {
        let s = book.add_worksheet().set_name(SHEET).map_err(x)?;
        for (c, name) in COLUMNS.iter().enumerate() {
            s.write_string_with_format(0, c as u16, *name, &bold)
                .map_err(x)?;
            let width = match *name {
                "stem" => 60.0,
                "a" | "b" | "c" | "d" | "e" | "indicator" => 25.0,
                _ => 12.0,
            };
            s.set_column_width(c as u16, width).map_err(x)?;
            s.set_column_format(c as u16, &wrap).map_err(x)?;
        }
        s.set_freeze_panes(1, 0).map_err(x)?;
        let row = [
            "#CONTOH-01",
            "single",
            "pedagogik",
            "Mengidentifikasi tahap perkembangan kognitif peserta didik",
            "",
            "1",
            "Menurut Piaget, peserta didik SMP berusia 12–15 tahun umumnya berada pada tahap ....",
            "sensorimotor",
            "praoperasional",
            "operasional konkret",
            "operasional formal",
            "",
            "D",
            "",
            "",
        ];
        for (c, v) in row.iter().enumerate() {
            if c == 5 {
                s.write_number_with_format(1, c as u16, 1.0, &example)
                    .map_err(x)?;
            } else {
                s.write_string_with_format(1, c as u16, *v, &example)
                    .map_err(x)?;
            }
        }
        let last = 20_000;
        let types = DataValidation::new()
            .allow_list_strings(&["single", "multiple", "truefalse"])
            .map_err(x)?
            .set_error_title("Jenis soal")
            .map_err(x)?
            .set_error_message("Tulis single, multiple atau truefalse.")
            .map_err(x)?;
        s.add_data_validation(1, 1, last, 1, &types).map_err(x)?;
        let keys = DataValidation::new()
            .allow_list_strings(&["A", "B", "C", "D", "E", "Benar", "Salah"])
            .map_err(x)?
            .set_error_style(DataValidationErrorStyle::Warning)
            .set_error_title("Kunci jawaban")
            .map_err(x)?
            .set_error_message(
                "Satu huruf A-E, Benar/Salah untuk soal truefalse, atau beberapa huruf dipisah koma (A,C) untuk soal multiple. Pilih Yes untuk tetap memakai isian ini.",
            )
            .map_err(x)?;
        s.add_data_validation(1, 12, last, 12, &keys).map_err(x)?;
        let weights = DataValidation::new()
            .allow_decimal_number(DataValidationRule::Between(0.01, 100.0))
            .set_error_title("Bobot")
            .map_err(x)?
            .set_error_message("Bobot adalah angka lebih dari 0 dan paling besar 100.")
            .map_err(x)?;
        s.add_data_validation(1, 5, last, 5, &weights).map_err(x)?;
    }
    {
        let s = book.add_worksheet().set_name("Petunjuk").map_err(x)?;
        s.set_column_width(0, 14.0).map_err(x)?;
        s.set_column_width(1, 100.0).map_err(x)?;
        s.write_string_with_format(0, 0, "Kolom", &bold)
            .map_err(x)?;
        s.write_string_with_format(0, 1, "Isi", &bold).map_err(x)?;
        for (r, (col, what)) in INSTRUCTIONS.iter().enumerate() {
            s.write_string(r as u32 + 1, 0, *col).map_err(x)?;
            s.write_string_with_format(r as u32 + 1, 1, *what, &wrap)
                .map_err(x)?;
        }
    }
    book.save_to_buffer().map_err(x)
}

const INSTRUCTIONS: [(&str, &str); 17] = [
    (
        "",
        "Satu baris pada lembar Soal = satu soal. Jangan mengubah nama kolom di baris 1. Baris 2 adalah contoh: id yang diawali # tidak ikut dibangun; salin barisnya lalu hapus tanda #.",
    ),
    (
        "id",
        "Kode soal, unik dalam paket: huruf, angka, - _ . (contoh KKA-P01). Jika kosong, tuk membuat kode dari nama berkas dan nomor urut (kka-007).",
    ),
    (
        "type",
        "single (pilihan ganda, satu jawaban), multiple (pilihan ganda kompleks, semua jawaban benar harus dipilih) atau truefalse (benar-salah).",
    ),
    (
        "competency",
        "Kompetensi: pedagogik atau profesional (wajib).",
    ),
    ("indicator", "Indikator soal (boleh kosong)."),
    (
        "pool",
        "Kelompok soal untuk paket paralel ([[test.draw]]); jika kosong sama dengan competency.",
    ),
    (
        "weight",
        "Bobot soal, lebih dari 0 sampai 100, paling banyak 2 angka desimal; kosong = 1.",
    ),
    (
        "stem",
        "Pokok soal. Teks biasa; baris baru tetap menjadi baris baru. Jika diawali tanda <, isinya dibaca sebagai HTML (lihat exam-packages/README.md).",
    ),
    (
        "a - e",
        "Pilihan jawaban A sampai E, diisi dari kolom a tanpa loncat; 2 sampai 5 pilihan. Soal truefalse: biarkan kosong.",
    ),
    (
        "key",
        "Kunci: satu huruf (D); untuk soal multiple beberapa huruf dipisah koma (A,C); untuk soal truefalse Benar atau Salah.",
    ),
    (
        "image",
        "Nama berkas gambar di folder media/ paket (huruf kecil, angka, . - _; .png .jpg .gif .svg), ditampilkan di bawah pokok soal. Boleh kosong.",
    ),
    (
        "image_alt",
        "Keterangan gambar untuk peserta yang tidak dapat melihatnya (disarankan).",
    ),
    (
        "Rumus",
        "Sel berisi rumus dibaca dari nilai yang tersimpan; simpan berkas dari Excel/LibreOffice sebelum dibangun.",
    ),
    (
        "Tanggal",
        "Jangan biarkan Excel mengubah isian menjadi tanggal: format kolom sebagai Teks bila perlu.",
    ),
    (
        "Periksa",
        "tuk package build menolak pilihan kosong, dua pilihan yang sama, kunci yang bukan pilihan, dan pokok soal yang sama persis; memperingatkan kunci yang menumpuk pada satu huruf, kunci yang selalu pilihan terpanjang, gambar tanpa keterangan, dan soal multiple yang tidak meminta memilih semua jawaban benar.",
    ),
    (
        "Pratinjau",
        "tuk package preview FOLDER -o pratinjau/ membuat salinan HTML untuk rapat telaah soal.",
    ),
    (
        "Simpan",
        "Simpan sebagai Excel Workbook (.xlsx) di folder items/ paket dan sebutkan di package.toml: bank = \"items/NAMA.xlsx\".",
    ),
];
