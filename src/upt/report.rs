//! The UPT's reports, from the newest imported bundle of every session. Each report is a
//! [`TypedTable`] written as CSV or XLSX; the columns are documented in `docs/reports.md` and do
//! not change without a note there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

use super::{Current, Upt, stats};
use crate::clock::local;
use crate::exam::FinishedBy;
use crate::exam::score::{Hundredths, predicate};
use crate::export::{self, Column, Dialect, TypedTable};
use crate::package::model::{Item, SCALE_LABELS};
use crate::seal::model::{AttemptDoc, ParticipantDoc};

/// The report kinds `tuk upt report` knows.
pub const KINDS: [&str; 8] = [
    "recap",
    "summary",
    "na",
    "prepost",
    "items",
    "reliability",
    "questionnaire",
    "logins",
];

/// Options some reports need.
#[derive(Default)]
pub(crate) struct Options {
    /// `na`: the PD/TS file (CSV: participant,pd,ts and optionally test).
    pub(crate) pdts: Option<Vec<u8>>,
    /// `na`: weights of PD, TS and TA in percent (default 10, 50, 40).
    pub(crate) weights: Option<String>,
}

/// Builds a report from the UPT store.
pub(crate) fn build(upt: &Upt, kind: &str, opts: &Options) -> Result<TypedTable> {
    let current = upt.current()?;
    build_from(&current, kind, opts)
}

pub(crate) fn build_from(current: &[Current], kind: &str, opts: &Options) -> Result<TypedTable> {
    Ok(match kind {
        "recap" => recap(current),
        "summary" => summary(current),
        "na" => na(
            current,
            opts.pdts.as_deref().ok_or_else(|| anyhow!("the na report needs the PD/TS file: --pdts FILE.csv (columns participant,pd,ts)"))?,
            opts.weights.as_deref().unwrap_or("10,50,40"),
        )?,
        "prepost" => prepost(current),
        "items" => items(current),
        "reliability" => reliability(current),
        "questionnaire" => questionnaire(current),
        "logins" => logins(current),
        k => bail!("unknown report {k:?}; choose one of {}", KINDS.join(", ")),
    })
}

/// The UPT's letterhead file in its data folder, set with `tuk upt letterhead` or by hand.
pub(crate) const LETTERHEAD_FILE: &str = "letterhead.toml";

/// The UPT's letterhead for its report pages, and the rows above the table and the page
/// header of its XLSX reports: `UDIR/letterhead.toml` (keys `name`, `address`, `head`,
/// `head_nip`, `logo`), empty when there is none or it cannot be read (logged).
pub(crate) fn letterhead(upt: &Upt) -> export::Letterhead {
    letterhead_at(&upt.dir).unwrap_or_else(|e| {
        tracing::warn!("{e:#}; reports without letterhead");
        export::Letterhead::default()
    })
}

/// The letterhead of the UPT data folder `dir`: empty when the file does not exist; an
/// error naming the file when it cannot be read or is not valid.
pub(crate) fn letterhead_at(dir: &Path) -> Result<export::Letterhead> {
    let path = dir.join(LETTERHEAD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => toml::from_str(&t).with_context(|| {
            format!(
                "{} is not a valid letterhead (keys name, address, head, head_nip, logo): fix it or set it again with `tuk upt letterhead`",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(export::Letterhead::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The title of a report in its XLSX (the row under the letterhead and the page header).
pub(crate) fn report_title(kind: &str) -> String {
    let t = match kind {
        "recap" => "Rekap nilai peserta",
        "summary" => "Ringkasan per tes, TUK dan sesi",
        "na" => "Nilai Akhir (NA) program",
        "prepost" => "Analisis nilai awal vs tes akhir",
        "items" => "Analisis butir soal",
        "reliability" => "Reliabilitas tes (KR-20)",
        "questionnaire" => "Ringkasan angket evaluasi",
        "logins" => "Riwayat login peserta",
        _ => return format!("Laporan {kind}"),
    };
    t.to_string()
}

/// Writes a table as CSV or XLSX, chosen by the file's extension, atomically. `excel`: the
/// CSV is for an Indonesian Excel (`;`, decimal comma); XLSX files carry `head` (the UPT's
/// letterhead) as rows above the table and in their page header (see
/// [`export::xlsx_headed`]); CSVs never do (their first row stays the machine names).
pub(crate) fn write(
    table: &TypedTable,
    kind: &str,
    out: &Path,
    excel: bool,
    head: &export::Letterhead,
) -> Result<()> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes = match ext.as_str() {
        "csv" => export::csv_as(
            table,
            if excel {
                Dialect::Excel
            } else {
                Dialect::Comma
            },
        )?,
        "xlsx" => export::xlsx_headed(table, kind, &report_title(kind), head)?,
        _ => bail!(
            "write the report to a .csv or .xlsx file (got {})",
            out.display()
        ),
    };
    crate::fsutil::write_atomic(out, &bytes)
}

fn offset(c: &Current) -> i32 {
    crate::package::model::parse_offset(&c.doc.timezone).unwrap_or(7 * 3600)
}

fn status(p: &ParticipantDoc) -> &'static str {
    match &p.attempt {
        None => "absent",
        Some(a) => match a.finished_by {
            None => "running",
            Some(FinishedBy::Participant) => "finished",
            Some(FinishedBy::Auto) => "auto_submitted",
            Some(FinishedBy::Proctor) => "force_finished",
        },
    }
}

/// `x` with two decimals; empty when it is not a finite number.
fn fixed2(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        String::new()
    }
}
/// `x` with four decimals; empty when it is not a finite number.
fn fixed4(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        String::new()
    }
}
fn opt_fixed4(x: Option<f64>) -> String {
    x.map(fixed4).unwrap_or_default()
}
fn fmt_p(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 1e-4 => format!("{p:.4e}"),
        Some(p) => format!("{p:.6}"),
        None => String::new(),
    }
}

/// Every roster row of every current bundle, with its bundle.
fn entries(current: &[Current]) -> impl Iterator<Item = (&Current, &ParticipantDoc)> {
    current
        .iter()
        .flat_map(|c| c.doc.participants.iter().map(move |p| (c, p)))
}

/// Finished attempts with their score, across bundles.
fn scored(current: &[Current]) -> Vec<(&Current, &ParticipantDoc, &AttemptDoc, f64)> {
    entries(current)
        .filter_map(|(c, p)| {
            let a = p.attempt.as_ref()?;
            let x = a.score.as_ref()?.total.parse::<f64>().ok()?;
            Some((c, p, a, x))
        })
        .collect()
}

pub(crate) fn recap(current: &[Current]) -> TypedTable {
    let mut t = TypedTable {
        columns: vec![
            Column::text("participant", "No. peserta"),
            Column::text("name", "Nama"),
            Column::text("tuk", "TUK"),
            Column::text("test", "Tes"),
            Column::text("session", "Sesi"),
            Column::dec("score", "Nilai", 2),
            Column::text("predicate", "Predikat"),
            Column::yes_no("passed", "Lulus"),
            Column::dec("nilai_awal", "Nilai awal", 2),
            Column::text("package", "Paket"),
            Column::text("institution", "Instansi"),
            Column::text("district", "Kabupaten/Kota"),
            Column::text("province", "Provinsi"),
            Column::yes_no("present", "Hadir"),
            Column::text("status", "Status"),
            Column::time("started", "Mulai"),
            Column::time("finished", "Selesai"),
            Column::int("answered", "Dijawab"),
            Column::int("items", "Jumlah soal"),
            Column::text("competency_scores", "Nilai per kompetensi"),
        ],
        rows: Vec::new(),
    };
    for (c, p) in entries(current) {
        let off = offset(c);
        let (a, r) = (p.attempt.as_ref(), &p.roster);
        let s = a.and_then(|a| a.score.as_ref());
        t.rows.push(vec![
            r.participant.to_string(),
            r.name.clone(),
            c.doc.tuk.name.clone(),
            r.test.clone(),
            r.session.clone(),
            s.map(|s| s.total.clone()).unwrap_or_default(),
            s.map(|s| s.predicate.clone()).unwrap_or_default(),
            s.map(|s| if s.passed { "yes" } else { "no" }.to_string())
                .unwrap_or_default(),
            r.nilai_awal.map(fixed2).unwrap_or_default(),
            c.doc.package.id.clone(),
            r.institution.clone(),
            r.district.clone(),
            r.province.clone(),
            match (p.present, a.is_some()) {
                (Some(true), _) | (None, true) => "yes",
                (Some(false), _) | (None, false) => "no",
            }
            .into(),
            status(p).into(),
            a.map(|a| local(a.started_ms, off)).unwrap_or_default(),
            a.and_then(|a| a.finished_ms)
                .map(|m| local(m, off))
                .unwrap_or_default(),
            a.map(|a| a.answered().to_string()).unwrap_or_default(),
            a.map(|a| a.form.len().to_string()).unwrap_or_default(),
            s.map(|s| {
                s.by_competency
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(";")
            })
            .unwrap_or_default(),
        ]);
    }
    t.rows.sort_by(|a, b| {
        (&a[9], &a[3], &a[4], &a[0], &a[2]).cmp(&(&b[9], &b[3], &b[4], &b[0], &b[2]))
    });
    t
}

pub(crate) fn summary(current: &[Current]) -> TypedTable {
    #[derive(Default)]
    struct G {
        registered: usize,
        present: usize,
        scores: Vec<f64>,
        passed: usize,
    }
    let mut groups: BTreeMap<(String, String, String), G> = BTreeMap::new();
    for (c, p) in entries(current) {
        let tuk = c.doc.tuk.name.clone();
        let test = &p.roster.test;
        let keys = [
            ("all".to_string(), String::new(), String::new()),
            ("test".to_string(), String::new(), test.clone()),
            ("tuk".to_string(), tuk.clone(), String::new()),
            ("tuk_test".to_string(), tuk, test.clone()),
        ];
        for k in keys {
            let g = groups.entry(k).or_default();
            g.registered += 1;
            if let Some(a) = &p.attempt {
                g.present += 1;
                if let Some(s) = &a.score {
                    g.scores.push(s.total.parse().unwrap_or(0.0));
                    g.passed += s.passed as usize;
                }
            }
        }
    }
    let mut t = TypedTable {
        columns: vec![
            Column::text("scope", "Cakupan"),
            Column::text("tuk", "TUK"),
            Column::text("test", "Tes"),
            Column::int("registered", "Terdaftar"),
            Column::int("present", "Hadir"),
            Column::int("finished", "Selesai"),
            Column::dec("mean", "Rata-rata", 2),
            Column::dec("sd", "Simpangan baku", 2),
            Column::dec("min", "Terendah", 2),
            Column::dec("max", "Tertinggi", 2),
            Column::int("passed", "Lulus"),
            Column::dec("pass_rate", "Persentase lulus", 2),
        ],
        rows: Vec::new(),
    };
    for ((scope, tuk, test), g) in groups {
        let n = g.scores.len();
        let min = g.scores.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = g.scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        t.rows.push(vec![
            scope,
            tuk,
            test,
            g.registered.to_string(),
            g.present.to_string(),
            n.to_string(),
            fixed2(stats::mean(&g.scores)),
            fixed2(stats::sd_sample(&g.scores)),
            fixed2(min),
            fixed2(max),
            g.passed.to_string(),
            if n > 0 {
                fixed2(100.0 * g.passed as f64 / n as f64)
            } else {
                String::new()
            },
        ]);
    }
    t
}

/// A decimal number as an exact count of millionths. Refuses more than 6 decimals.
pub fn parse_micro(text: &str) -> Option<i128> {
    let t = text.trim().replace(',', ".");
    if t.is_empty() || t.starts_with('+') {
        return None;
    }
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((&t, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > 6
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || int.len() > 9
    {
        return None;
    }
    let int: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: i128 = format!("{frac:0<6}").parse().ok()?;
    let v = int * 1_000_000 + frac;
    Some(if neg { -v } else { v })
}

/// NA = Σ weight·score / 100, exactly, rounded once half up to hundredths.
pub fn na_hundredths(weights_micro: &[i128; 3], scores_micro: &[i128; 3]) -> Hundredths {
    let sum: i128 = weights_micro
        .iter()
        .zip(scores_micro)
        .map(|(w, s)| w * s)
        .sum();
    // sum is NA × 100 × 10^12; hundredths of NA = sum / 10^12.
    let den: i128 = 1_000_000_000_000;
    Hundredths(((2 * sum + den) / (2 * den)).max(0) as u32)
}

/// Parses `10,50,40`: three weights (PD, TS, TA) in percent that must sum to 100.
pub fn parse_weights(text: &str) -> Result<[i128; 3]> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() != 3 {
        bail!("--weights needs three numbers PD,TS,TA in percent, e.g. 10,50,40 (got {text:?})");
    }
    let mut w = [0i128; 3];
    for (i, p) in parts.iter().enumerate() {
        w[i] = parse_micro(p)
            .filter(|v| (0..=100_000_000).contains(v))
            .ok_or_else(|| anyhow!("--weights: {p:?} is not a percentage from 0 to 100"))?;
    }
    if w.iter().sum::<i128>() != 100_000_000 {
        bail!(
            "--weights {text} sum to {}, not 100: the weights of PD, TS and TA must add up to 100 (Perdirjen 2023: NA = Σ Nk·Bk with Σ Bk = 100%)",
            Hundredths((w.iter().sum::<i128>() / 10_000) as u32)
        );
    }
    Ok(w)
}

/// The PD/TS file read: `(participant, test)` → (PD, TS in millionths, line); `test` is
/// empty when the file has no `test` column.
struct PdTs {
    rows: BTreeMap<(String, String), (i128, i128, usize)>,
    has_test: bool,
}

impl PdTs {
    /// Reads the CSV (header `participant,pd,ts` and optionally `test`, any order).
    fn read(pdts: &[u8]) -> Result<PdTs> {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(pdts);
        let headers: Vec<String> = rdr
            .headers()
            .map_err(|e| anyhow!("the PD/TS file is not CSV: {e}"))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect();
        let col = |name: &str| headers.iter().position(|h| h == name);
        let (Some(ci), Some(cpd), Some(cts)) = (col("participant"), col("pd"), col("ts")) else {
            bail!(
                "the PD/TS file needs a header row with the columns participant,pd,ts (and optionally test); found: {}",
                headers.join(",")
            );
        };
        let ctest = col("test");
        let mut rows = BTreeMap::new();
        for (i, rec) in rdr.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| anyhow!("the PD/TS file, line {line}: {e}"))?;
            let get = |c: usize| rec.get(c).unwrap_or("").to_string();
            let number = |c: usize, what: &str| -> Result<i128> {
                let v = get(c);
                parse_micro(&v)
                    .filter(|x| (0..=100_000_000).contains(x))
                    .ok_or_else(|| {
                        anyhow!(
                            "the PD/TS file, line {line}: {what} {v:?} is not a number from 0 to 100"
                        )
                    })
            };
            let participant = get(ci);
            if participant.is_empty() {
                bail!("the PD/TS file, line {line}: the participant number is empty");
            }
            let test = ctest.map(get).unwrap_or_default();
            let (pd, ts) = (number(cpd, "pd")?, number(cts, "ts")?);
            if rows
                .insert((participant.clone(), test.clone()), (pd, ts, line))
                .is_some()
            {
                bail!(
                    "the PD/TS file, line {line}: participant {participant} {}appears twice",
                    if test.is_empty() {
                        String::new()
                    } else {
                        format!("(test {test}) ")
                    }
                );
            }
        }
        Ok(PdTs {
            rows,
            has_test: ctest.is_some(),
        })
    }

    /// The key of `p`'s row.
    fn key(&self, p: &ParticipantDoc) -> (String, String) {
        let test = if self.has_test {
            p.roster.test.clone()
        } else {
            String::new()
        };
        (p.roster.participant.to_string(), test)
    }

    /// Refuses a file that misses a participant who took the final test (`missing`) or
    /// lists one with no result here (a row not in `used`): NA is all or nothing.
    fn covers(&self, mut missing: Vec<String>, used: &BTreeSet<(String, String)>) -> Result<()> {
        if !missing.is_empty() {
            let n = missing.len();
            missing.truncate(10);
            bail!(
                "the PD/TS file has no row for {n} participant(s) who took the final test ({}{}): NA needs PD and TS for everyone; no report was written",
                missing.join(", "),
                if n > 10 { ", ..." } else { "" }
            );
        }
        let unknown = self.unused(used);
        if !unknown.is_empty() {
            bail!(
                "the PD/TS file lists {} participant(s) with no result at this UPT: {}; check the file belongs to these tests; no report was written",
                unknown.len(),
                unknown.into_iter().take(10).collect::<Vec<_>>().join(", ")
            );
        }
        Ok(())
    }

    /// The rows nobody used (no result at this UPT), as "number (line N)".
    fn unused(&self, used: &BTreeSet<(String, String)>) -> Vec<String> {
        self.rows
            .iter()
            .filter(|(k, _)| !used.contains(*k))
            .map(|((p, _), (_, _, line))| format!("{p} (line {line})"))
            .collect()
    }
}

/// NA, its predicate and whether it passes (above 70.00), from PD, TS and the final test's
/// score `ta` (empty when the participant has no score).
fn na_cells(w: &[i128; 3], pd: i128, ts: i128, ta: Option<&str>) -> (String, String, String) {
    match ta.and_then(parse_micro) {
        Some(ta_micro) => {
            let na = na_hundredths(w, &[pd, ts, ta_micro]);
            (
                na.to_string(),
                predicate(na).to_string(),
                if na.0 > 7000 { "yes" } else { "no" }.to_string(),
            )
        }
        None => (String::new(), String::new(), String::new()),
    }
}

pub(crate) fn na(current: &[Current], pdts: &[u8], weights: &str) -> Result<TypedTable> {
    let w = parse_weights(weights)?;
    let file = PdTs::read(pdts)?;
    let entries: Vec<(&Current, &ParticipantDoc)> = entries(current).collect();
    let mut per_participant: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, p) in &entries {
        *per_participant
            .entry(p.roster.participant.as_str())
            .or_default() += 1;
    }
    let lookup = |p: &ParticipantDoc| -> Result<Option<(i128, i128)>> {
        if !file.has_test && per_participant.get(p.roster.participant.as_str()) > Some(&1) {
            bail!(
                "participant {} took several tests: add a `test` column to the PD/TS file",
                p.roster.participant
            );
        }
        Ok(file.rows.get(&file.key(p)).map(|x| (x.0, x.1)))
    };
    let mut missing = Vec::new();
    let mut used = BTreeSet::new();
    let mut t = TypedTable {
        columns: vec![
            Column::text("participant", "No. peserta"),
            Column::text("name", "Nama"),
            Column::text("tuk", "TUK"),
            Column::text("test", "Tes"),
            Column::dec("pd", "Nilai PD", 2),
            Column::dec("ts", "Nilai TS", 2),
            Column::dec("ta", "Nilai TA", 2),
            Column::dec("na", "Nilai akhir (NA)", 2),
            Column::text("predicate", "Predikat"),
            Column::yes_no("passed", "Lulus"),
            Column::text("weights", "Bobot PD,TS,TA"),
        ],
        rows: Vec::new(),
    };
    for (c, p) in &entries {
        let ta = p
            .attempt
            .as_ref()
            .and_then(|a| a.score.as_ref())
            .map(|s| s.total.clone());
        let Some((pd, ts)) = lookup(p)? else {
            if ta.is_some() {
                missing.push(p.roster.participant.to_string());
            }
            continue;
        };
        used.insert(file.key(p));
        let (na_text, pred, passed) = na_cells(&w, pd, ts, ta.as_deref());
        let h = |m: i128| Hundredths::to_string(&Hundredths(((m + 5_000) / 10_000) as u32));
        t.rows.push(vec![
            p.roster.participant.to_string(),
            p.roster.name.clone(),
            c.doc.tuk.name.clone(),
            p.roster.test.clone(),
            h(pd),
            h(ts),
            ta.unwrap_or_default(),
            na_text,
            pred,
            passed,
            weights.replace(' ', ""),
        ]);
    }
    file.covers(missing, &used)?;
    t.rows.sort_by(|a, b| (&a[3], &a[0]).cmp(&(&b[3], &b[0])));
    Ok(t)
}

pub(crate) fn prepost(current: &[Current]) -> TypedTable {
    let mut by_test: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for (_, p, _, score) in scored(current) {
        if let Some(pre) = p.roster.nilai_awal {
            for k in [p.roster.test.clone(), "ALL".to_string()] {
                let e = by_test.entry(k).or_default();
                e.0.push(pre);
                e.1.push(score);
            }
        }
    }
    let mut t = TypedTable {
        columns: vec![
            Column::text("test", "Tes"),
            Column::int("n", "Jumlah pasangan"),
            Column::dec("mean_pre", "Rata-rata nilai awal", 4),
            Column::dec("mean_post", "Rata-rata tes akhir", 4),
            Column::dec("mean_gain", "Rata-rata gain", 4),
            Column::dec("t", "t", 4),
            Column::int("df", "df"),
            Column::num("p", "p"),
            Column::dec("cohen_dz", "Cohen d_z", 4),
            Column::dec("sd_gain", "Simpangan baku gain", 4),
            Column::dec("n_gain_mean", "Rata-rata N-gain", 4),
            Column::dec("n_gain_class", "N-gain kelas", 4),
            Column::text("gain_category", "Kategori N-gain"),
            Column::text("effect_category", "Kategori effect size"),
        ],
        rows: Vec::new(),
    };
    let tests = by_test.len();
    for (test, (pre, post)) in by_test {
        if test == "ALL" && tests == 2 {
            continue; // one test: ALL would repeat it
        }
        let Some(r) = stats::paired_t(&pre, &post) else {
            continue;
        };
        t.rows.push(vec![
            test,
            r.n.to_string(),
            fixed4(r.mean_pre),
            fixed4(r.mean_post),
            fixed4(r.mean_gain),
            opt_fixed4(r.t),
            r.df.to_string(),
            fmt_p(r.p),
            opt_fixed4(r.cohen_dz),
            fixed4(r.sd_gain),
            opt_fixed4(r.n_gain_mean),
            opt_fixed4(r.n_gain_class),
            r.n_gain_class
                .map(stats::gain_category)
                .unwrap_or("")
                .into(),
            r.cohen_dz.map(stats::effect_category).unwrap_or("").into(),
        ]);
    }
    t
}

/// Per test (package + test id): the items and every finished attempt.
struct TestData<'a> {
    items: Vec<&'a Item>,
    attempts: Vec<(&'a AttemptDoc, f64)>,
}

fn tests_data(current: &[Current]) -> BTreeMap<(String, String), TestData<'_>> {
    let mut out: BTreeMap<(String, String), TestData> = BTreeMap::new();
    for c in current {
        for tspec in &c.manifest.tests {
            out.entry((c.doc.package.id.clone(), tspec.id.clone()))
                .or_insert_with(|| TestData {
                    items: c.items.iter().filter(|i| i.test == tspec.id).collect(),
                    attempts: Vec::new(),
                });
        }
    }
    for (c, p, a, score) in scored(current) {
        if let Some(td) = out.get_mut(&(c.doc.package.id.clone(), p.roster.test.clone())) {
            td.attempts.push((a, score));
        }
    }
    out.retain(|_, td| !td.attempts.is_empty());
    out
}

fn credit(a: &AttemptDoc, item: &str) -> u64 {
    a.score
        .as_ref()
        .and_then(|s| s.items.get(item))
        .copied()
        .unwrap_or(0)
}

pub(crate) fn items(current: &[Current]) -> TypedTable {
    let mut t = TypedTable {
        columns: vec![
            Column::text("package", "Paket"),
            Column::text("test", "Tes"),
            Column::text("item", "Butir"),
            Column::text("competency", "Kompetensi"),
            Column::text("indicator", "Indikator"),
            Column::text("kind", "Jenis"),
            Column::text("key", "Kunci"),
            Column::dec("weight", "Bobot", 2),
            Column::int("n", "Jumlah peserta"),
            Column::dec("difficulty", "Tingkat kesukaran", 4),
            Column::dec("discrimination", "Daya beda", 4),
            Column::dec("discrimination_rest", "Daya beda (terkoreksi)", 4),
            Column::dec("blank", "Proporsi kosong", 4),
            Column::text("options", "Sebaran pilihan"),
            Column::int("weak_distractors", "Pengecoh lemah"),
        ],
        rows: Vec::new(),
    };
    for ((package, test), td) in tests_data(current) {
        let weights: BTreeMap<&str, u64> = td
            .items
            .iter()
            .map(|i| (i.id.as_str(), i.weight_hundredths() * 60))
            .collect();
        // Earned and possible credit of every attempt, once.
        let totals: Vec<(u64, u64)> = td
            .attempts
            .iter()
            .map(|(a, _)| {
                let earned = a.form.iter().map(|f| credit(a, &f.item)).sum();
                let possible = a
                    .form
                    .iter()
                    .map(|f| weights.get(f.item.as_str()).copied().unwrap_or(0))
                    .sum();
                (earned, possible)
            })
            .collect();
        for it in &td.items {
            let st = ItemStats::of(it, &td, &totals);
            let rate = |k: usize| st.rate(k);
            let chosen = |o: &str| rate(st.chosen.get(o).copied().unwrap_or(0));
            let options: Vec<String> = it
                .options
                .iter()
                .map(|o| {
                    let star = if it.key.contains(&o.id) { "*" } else { "" };
                    format!("{}{star}={}", o.id, fixed4(chosen(&o.id)))
                })
                .collect();
            let weak = it
                .options
                .iter()
                .filter(|o| !it.key.contains(&o.id) && chosen(&o.id) < 0.05)
                .count();
            t.rows.push(vec![
                package.clone(),
                test.clone(),
                it.id.clone(),
                it.competency.clone(),
                it.indicator.clone(),
                format!("{:?}", it.kind).to_lowercase(),
                it.key.join("|"),
                Hundredths(it.weight_hundredths() as u32).to_string(),
                st.frac.len().to_string(),
                fixed4(stats::mean(&st.frac)),
                opt_fixed4(stats::point_biserial(&st.frac, &st.total)),
                opt_fixed4(stats::point_biserial(&st.frac, &st.rest)),
                fixed4(rate(st.blank)),
                options.join(";"),
                weak.to_string(),
            ]);
        }
    }
    t
}

/// One item over the attempts that had it: the fraction of its credit each earned, their
/// total score and their score without this item (percent), the options chosen, blanks.
struct ItemStats<'a> {
    frac: Vec<f64>,
    total: Vec<f64>,
    rest: Vec<f64>,
    chosen: BTreeMap<&'a str, usize>,
    blank: usize,
}

impl<'a> ItemStats<'a> {
    /// `totals`: earned and possible credit of each of `td.attempts`, in order.
    fn of(it: &Item, td: &TestData<'a>, totals: &[(u64, u64)]) -> Self {
        let full = it.weight_hundredths() * 60;
        let mut st = ItemStats {
            frac: Vec::new(),
            total: Vec::new(),
            rest: Vec::new(),
            chosen: BTreeMap::new(),
            blank: 0,
        };
        for (&(a, score), &(earned, possible)) in td.attempts.iter().zip(totals) {
            if !a.form.iter().any(|f| f.item == it.id) {
                continue;
            }
            let c = credit(a, &it.id);
            st.frac.push(if full == 0 {
                0.0
            } else {
                c as f64 / full as f64
            });
            st.total.push(score);
            st.rest.push(if possible > full {
                100.0 * (earned - c) as f64 / (possible - full) as f64
            } else {
                0.0
            });
            match a.answers.get(&it.id) {
                Some(x) if !x.choice.is_empty() => {
                    for o in &x.choice {
                        *st.chosen.entry(o.as_str()).or_default() += 1;
                    }
                }
                _ => st.blank += 1,
            }
        }
        st
    }

    /// `k` out of the attempts that had the item (NaN when none had it).
    fn rate(&self, k: usize) -> f64 {
        let n = self.frac.len();
        if n == 0 {
            f64::NAN
        } else {
            k as f64 / n as f64
        }
    }
}

pub(crate) fn reliability(current: &[Current]) -> TypedTable {
    let mut t = TypedTable {
        columns: vec![
            Column::text("package", "Paket"),
            Column::text("test", "Tes"),
            Column::int("participants", "Peserta"),
            Column::int("items", "Butir"),
            Column::dec("kr20", "KR-20", 4),
            Column::dec("mean_correct", "Rata-rata benar", 2),
            Column::dec("sd_correct", "Simpangan baku benar", 2),
            Column::text("note", "Catatan"),
        ],
        rows: Vec::new(),
    };
    for ((package, test), td) in tests_data(current) {
        let full: BTreeMap<&str, u64> = td
            .items
            .iter()
            .map(|i| (i.id.as_str(), i.weight_hundredths() * 60))
            .collect();
        // Items every participant had (all of them unless forms are drawn from pools).
        let mut common: Option<BTreeSet<&str>> = None;
        for (a, _) in &td.attempts {
            let ids: BTreeSet<&str> = a.form.iter().map(|f| f.item.as_str()).collect();
            common = Some(match common {
                None => ids,
                Some(c) => c.intersection(&ids).copied().collect(),
            });
        }
        let common: Vec<&str> = common.unwrap_or_default().into_iter().collect();
        let rows: Vec<Vec<bool>> = td
            .attempts
            .iter()
            .map(|(a, _)| {
                common
                    .iter()
                    .map(|id| credit(a, id) == full.get(id).copied().unwrap_or(u64::MAX))
                    .collect()
            })
            .collect();
        let correct: Vec<f64> = rows
            .iter()
            .map(|r| r.iter().filter(|&&x| x).count() as f64)
            .collect();
        let all_same = common.len() == td.items.len();
        t.rows.push(vec![
            package,
            test,
            rows.len().to_string(),
            common.len().to_string(),
            opt_fixed4(stats::kr20(&rows)),
            fixed2(stats::mean(&correct)),
            fixed2(stats::sd_sample(&correct)),
            if all_same {
                String::new()
            } else {
                format!(
                    "forms differ: KR-20 over the {} items everyone had",
                    common.len()
                )
            },
        ]);
    }
    t
}

pub(crate) fn questionnaire(current: &[Current]) -> TypedTable {
    let mut t = TypedTable {
        columns: vec![
            Column::text("package", "Paket"),
            Column::text("question", "Butir"),
            Column::text("type", "Jenis"),
            Column::text("text", "Pertanyaan"),
            Column::int("n", "Jumlah jawaban"),
            Column::int("sangat_baik", "Sangat baik"),
            Column::int("baik", "Baik"),
            Column::int("cukup", "Cukup"),
            Column::int("kurang", "Kurang"),
            Column::int("sangat_kurang", "Sangat kurang"),
            Column::dec("mean", "Rata-rata", 2),
            Column::text("answer", "Jawaban terbuka"),
        ],
        rows: Vec::new(),
    };
    let mut done = BTreeSet::new();
    for c in current {
        let Some(q) = &c.doc.questionnaire else {
            continue;
        };
        if !done.insert(c.doc.package.id.clone()) {
            continue;
        }
        let answers: Vec<&BTreeMap<String, String>> = current
            .iter()
            .filter(|x| x.doc.package.id == c.doc.package.id)
            .flat_map(|x| x.doc.participants.iter())
            .filter_map(|p| p.attempt.as_ref().and_then(|a| a.questionnaire.as_ref()))
            .collect();
        for s in &q.scale {
            let mut counts = [0usize; 5];
            for a in &answers {
                if let Some(i) = a
                    .get(&s.id)
                    .and_then(|v| SCALE_LABELS.iter().position(|l| l == v))
                {
                    counts[i] += 1;
                }
            }
            let n: usize = counts.iter().sum();
            let mean = if n == 0 {
                f64::NAN
            } else {
                counts
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (5 - i) as f64 * *k as f64)
                    .sum::<f64>()
                    / n as f64
            };
            let mut row = vec![
                c.doc.package.id.clone(),
                s.id.clone(),
                "scale".into(),
                s.text.clone(),
                n.to_string(),
            ];
            row.extend(counts.iter().map(|k| k.to_string()));
            row.push(fixed2(mean));
            row.push(String::new());
            t.rows.push(row);
        }
        for o in &q.open {
            for a in &answers {
                if let Some(text) = a.get(&o.id).filter(|t| !t.trim().is_empty()) {
                    let mut row = vec![
                        c.doc.package.id.clone(),
                        o.id.clone(),
                        "open".into(),
                        o.text.clone(),
                    ];
                    row.extend(std::iter::repeat_n(String::new(), 7));
                    row.push(text.trim().to_string());
                    t.rows.push(row);
                }
            }
        }
    }
    t
}

pub(crate) fn logins(current: &[Current]) -> TypedTable {
    let mut t = TypedTable {
        columns: vec![
            Column::text("package", "Paket"),
            Column::text("tuk", "TUK"),
            Column::text("session", "Sesi"),
            Column::text("participant", "No. peserta"),
            Column::text("name", "Nama"),
            Column::time("at", "Waktu"),
            Column::text("ip", "Alamat PC"),
            Column::text("kind", "Jenis"),
        ],
        rows: Vec::new(),
    };
    for (c, p) in entries(current) {
        let off = offset(c);
        for l in &p.logins {
            t.rows.push(vec![
                c.doc.package.id.clone(),
                c.doc.tuk.name.clone(),
                p.roster.session.clone(),
                p.roster.participant.to_string(),
                p.roster.name.clone(),
                local(l.at_ms, off),
                l.ip.clone(),
                l.kind.clone(),
            ]);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn na_is_exact_at_the_boundaries() {
        let w = parse_weights("10,50,40").unwrap();
        let m = |s: &str| parse_micro(s).unwrap();
        // 0.1·70 + 0.5·70 + 0.4·70 = 70.00 exactly: Sedang, not passed.
        let na = na_hundredths(&w, &[m("70"), m("70"), m("70")]);
        assert_eq!(
            (na.to_string().as_str(), predicate(na)),
            ("70.00", "Sedang")
        );
        // 0.1·70.1 + 0.5·70 + 0.4·70 = 70.01: Cukup.
        let na = na_hundredths(&w, &[m("70.1"), m("70"), m("70")]);
        assert_eq!((na.to_string().as_str(), predicate(na)), ("70.01", "Cukup"));
        // 0.1·90.05 + 0.5·90 + 0.4·90 = 90.005 → 90.01 (half up): Amat Baik.
        let na = na_hundredths(&w, &[m("90.05"), m("90"), m("90")]);
        assert_eq!(
            (na.to_string().as_str(), predicate(na)),
            ("90.01", "Amat Baik")
        );
        assert!(
            parse_weights("10,50,41")
                .unwrap_err()
                .to_string()
                .contains("sum to 101.00")
        );
        assert!(parse_weights("10,50").is_err());
        assert_eq!(parse_micro("85,5"), Some(85_500_000));
        assert_eq!(parse_micro("8O"), None);
        assert_eq!(parse_micro("1e3"), None);
        assert_eq!(parse_micro(".5"), Some(500_000));
    }
}
