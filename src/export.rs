//! Tables as files: every printable list also exports as CSV (header row, stable column
//! names) and as XLSX, from the same rows, so the three never disagree.

use anyhow::{Result, anyhow};

/// A table: column names and rows of text cells.
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

pub fn csv(t: &Table) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&t.columns)?;
    for r in &t.rows {
        w.write_record(r)?;
    }
    w.into_inner().map_err(|e| anyhow!("{e}"))
}

pub fn xlsx(t: &Table, sheet: &str) -> Result<Vec<u8>> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name(sheet).map_err(|e| anyhow!("{e}"))?;
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for (c, name) in t.columns.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *name, &bold)
            .map_err(|e| anyhow!("{e}"))?;
    }
    for (r, row) in t.rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            // Numbers stay numbers in a spreadsheet; participant numbers stay text.
            let leading_zero = cell.len() > 1 && cell.starts_with('0') && !cell.starts_with("0.");
            match cell.parse::<f64>() {
                Ok(n) if cell.len() < 12 && !leading_zero => {
                    ws.write_number(r, c, n).map_err(|e| anyhow!("{e}"))?;
                }
                _ => {
                    ws.write_string(r, c, cell).map_err(|e| anyhow!("{e}"))?;
                }
            }
        }
    }
    book.save_to_buffer().map_err(|e| anyhow!("{e}"))
}
