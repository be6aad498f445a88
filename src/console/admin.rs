//! Admin-only pages: import a package (upload, see the verified header and counts, then
//! confirm), manage accounts, and the data folder's health.

use std::convert::Infallible;

use maud::html;

use super::{Staff, csrf_field};
use crate::app::App;
use crate::exam::events::Actor;
use crate::exam::{Refused, Role};
use crate::export;
use crate::package;
use crate::server::Refusal;
use crate::server::http::{Req, Resp};
use crate::server::shell::CONSOLE_HOME;

fn admin_only(s: &Staff) -> Result<(), Refusal> {
    if s.role == Role::Admin {
        Ok(())
    } else {
        Err(Refused::Forbidden.into())
    }
}

fn pending_dir(app: &App) -> std::path::PathBuf {
    app.dir.join("pending")
}

pub(crate) fn import_page(s: &Staff, note: Option<(bool, String)>) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let markup = html! {
        main.box.wide {
            h1 { "Impor paket soal" }
            @if let Some((ok, text)) = &note { p class=(if *ok { "ok" } else { "error" }) role="status" { (text) } }
            p { "Pilih berkas .tukpkg dari UPT (dari USB atau unduhan). Paket diperiksa dahulu; impor terjadi setelah Anda mengonfirmasi." }
            form method="post" action={"/admin/impor?csrf=" (s.csrf)} enctype="multipart/form-data" {
                input type="file" name="package" accept=".tukpkg" required;
                button.primary type="submit" { "Periksa paket" }
            }
        }
    };
    Ok(super::staff_page(
        s,
        CONSOLE_HOME,
        "Impor paket soal",
        "Impor paket",
        markup,
    ))
}

/// Step 1: receive the file, verify and open it, show what is inside, keep it pending.
pub(crate) async fn upload(app: &App, req: &Req, s: &Staff) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let ct = req
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary =
        multer::parse_boundary(ct).map_err(|_| crate::server::refusal::MALFORMED_FORM)?;
    let body = req.body.clone();
    let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut file = None;
    while let Ok(Some(field)) = mp.next_field().await {
        if field.name() == Some("package") {
            file = field.bytes().await.ok();
        }
    }
    let bytes = file.ok_or(crate::server::refusal::MALFORMED_FORM)?;
    let trust = app.trust().map_err(|_| Refused::StoreFailed)?;
    let checked = package::verify(&bytes, &trust).and_then(|p| {
        app.check_package_owner(p.header(), &trust)?;
        let c = p.open(&app.key)?;
        Ok((p.header().clone(), p.file_hash().to_string(), c.counts()))
    });
    let (header, hash, (tests, items, participants, sessions)) = match checked {
        Ok(x) => x,
        Err(e) => return import_page(s, Some((false, format!("Paket DITOLAK: {e:#}")))),
    };
    let dir = pending_dir(app);
    crate::fsutil::create_private_dir(&dir)
        .and_then(|_| crate::fsutil::write_private(&dir.join(format!("{hash}.tukpkg")), &bytes))
        .map_err(|_| Refused::StoreFailed)?;
    let markup = html! {
        main.box.wide {
            h1 { "Paket terverifikasi" }
            p.ok { "Tanda tangan dan semua hash cocok; paket dapat dibuka dengan kunci TUK ini." }
            table.facts {
                tr { th { "Paket" } td { (header.package_id) " versi " (header.version) } }
                tr { th { "Judul" } td { (header.title) } }
                tr { th { "UPT" } td { (header.upt) } }
                tr { th { "Dibuat" } td { (header.created) } }
                tr { th { "Tes" } td { (tests) } }
                tr { th { "Soal" } td { @match items { Some(n) => (n), None => "terkunci sampai kode rilis diberikan" } } }
                tr { th { "Peserta" } td { (participants) } }
                tr { th { "Sesi" } td { (sessions) } }
                tr { th { "blake3 berkas" } td.mono.small { (hash) } }
            }
            form method="post" action="/admin/impor/konfirmasi" {
                (csrf_field(s))
                input type="hidden" name="hash" value=(hash);
                button.primary type="submit" { "Impor paket ini" }
            }
        }
    };
    Ok(super::staff_page(
        s,
        CONSOLE_HOME,
        "Impor paket soal",
        "Impor paket",
        markup,
    ))
}

/// Step 2: import the pending file the admin looked at.
pub(crate) async fn confirm(app: &App, req: &Req, s: &Staff) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let hash = req
        .form()
        .get("hash")
        .and_then(|v| v.first().cloned())
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(Refused::InvalidInput)?;
    let path = pending_dir(app).join(format!("{hash}.tukpkg"));
    let bytes = std::fs::read(&path).map_err(|_| Refused::InvalidInput)?;
    let actor = Actor::Staff(s.name.clone());
    // Hashing new participants' passwords takes seconds: off the async workers.
    let app_ptr: &App = app;
    let result = tokio::task::block_in_place(|| app_ptr.import(&bytes, &actor));
    let _ = std::fs::remove_file(&path);
    match result {
        Ok(r) if r.already => import_page(
            s,
            Some((
                true,
                format!(
                    "Paket {} versi {} sudah pernah diimpor.",
                    r.package_id, r.version
                ),
            )),
        ),
        Ok(r) => import_page(
            s,
            Some((
                true,
                format!(
                    "Paket {} versi {} diimpor: {} sesi, {} peserta, {} kata sandi baru.",
                    r.package_id, r.version, r.sessions, r.participants, r.new_credentials
                ),
            )),
        ),
        Err(e) => import_page(s, Some((false, format!("Impor gagal: {e:#}")))),
    }
}

pub(crate) fn users_page(
    app: &App,
    s: &Staff,
    note: Option<(bool, String)>,
) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let ex = app.read();
    let markup = html! {
        main.box.wide {
            h1 { "Akun admin dan pengawas" }
            @if let Some((ok, text)) = &note { p class=(if *ok { "ok" } else { "error" }) role="status" { (text) } }
            p { "Nama lengkap dan NIP dicetak di blok tanda tangan berita acara (Pengawas 1, Pengawas 2, Teknisi/Proktor) dan daftar hadir; kosongkan NIP bila tidak ada." }
            table.board {
                thead { tr { th { "Nama pengguna" } th { "Peran" } th { "Nama lengkap dan NIP (untuk tanda tangan)" } } }
                tbody {
                    @for u in ex.users.values() {
                        tr {
                            td { (u.name) }
                            td { (if u.role == Role::Admin { "admin" } else { "pengawas" }) }
                            td {
                                form.inline method="post" action="/admin/pengguna/identitas" {
                                    (csrf_field(s))
                                    input type="hidden" name="name" value=(u.name);
                                    input name="full_name" maxlength="200" value=(u.full_name) placeholder="Nama lengkap dan gelar" aria-label={"Nama lengkap " (u.name)} size="26";
                                    " "
                                    input name="nip" maxlength="40" value=(u.nip) placeholder="NIP" aria-label={"NIP " (u.name)} size="20";
                                    " "
                                    button type="submit" { "Simpan" }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Tambah akun" }
            form method="post" action="/admin/pengguna" {
                (csrf_field(s))
                label for="name" { "Nama pengguna" } input #name name="name" required pattern="[A-Za-z0-9._-]{1,64}";
                label for="role" { "Peran" } select #role name="role" { option value="proctor" { "pengawas" } option value="admin" { "admin" } }
                label for="pw" { "Kata sandi (min. 8 karakter)" } input #pw name="password" type="password" minlength="8" required;
                button.primary type="submit" { "Tambah" }
            }
        }
    };
    Ok(super::staff_page(s, CONSOLE_HOME, "Akun", "Akun", markup))
}

pub(crate) async fn add_user(app: &App, req: &Req, s: &Staff) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let (name, password) = (
        req.form_field("name").trim().to_string(),
        req.form_field("password"),
    );
    let role = if req.form_field("role") == "admin" {
        Role::Admin
    } else {
        Role::Proctor
    };
    if password.chars().count() < 8 {
        return users_page(
            app,
            s,
            Some((false, "Kata sandi minimal 8 karakter.".into())),
        );
    }
    if app.read().users.contains_key(&name) {
        return users_page(app, s, Some((false, format!("Akun {name} sudah ada."))));
    }
    let actor = Actor::Staff(s.name.clone());
    let r = tokio::task::block_in_place(|| app.add_user_blocking(&name, role, &password, &actor));
    match r {
        Ok(()) => users_page(app, s, Some((true, format!("Akun {name} ditambahkan.")))),
        Err(e) => users_page(app, s, Some((false, format!("{e:#}")))),
    }
}

/// `POST /admin/pengguna/identitas`: an account's full name and NIP for signature blocks.
pub(crate) async fn set_identity(app: &App, req: &Req, s: &Staff) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let name = req.form_field("name").trim().to_string();
    let (full_name, nip) = (req.form_field("full_name"), req.form_field("nip"));
    if !app.read().users.contains_key(&name) {
        return users_page(app, s, Some((false, format!("Akun {name} tidak ada."))));
    }
    let actor = format!("staff:{}", s.name);
    let r = tokio::task::block_in_place(|| app.set_user_identity(&name, &full_name, &nip, &actor));
    let note = match r {
        Ok(()) => (true, format!("Nama lengkap dan NIP akun {name} disimpan.")),
        Err(e) => (
            false,
            format!(
                "Tidak disimpan: {e:#}. Isi nama dan NIP dalam satu baris, paling banyak 200 karakter."
            ),
        ),
    };
    users_page(app, s, Some(note))
}

pub(crate) fn health_page(app: &App, s: &Staff) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let db = std::fs::metadata(app.dir.join(crate::store::DB_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    let (metrics, sessions, attempts) = {
        let ex = app.read();
        (ex.metrics.clone(), ex.sessions.len(), ex.attempts.len())
    };
    let free = crate::fsutil::free_bytes(&app.dir);
    let markup = html! {
        main.box.wide {
            h1 { "Kesehatan folder data" }
            table.facts {
                tr { th { "Folder data" } td.mono { (app.dir.display()) } }
                tr { th { "Ukuran basis data" } td { (db / 1024) " KiB" } }
                tr { th { "Ruang disk kosong" } td { (free.map_or_else(|| "tidak diketahui".to_string(), |b| format!("{} MiB", b / (1024 * 1024)))) } }
                tr { th { "Sesi / percobaan" } td { (sessions) " / " (attempts) } }
                tr { th { "Commit ke disk" } td { (metrics.commits) " (batch terbesar " (metrics.batch_max) ")" } }
                tr { th { "Jawaban tersimpan sejak server hidup" } td { (metrics.answers_saved) } }
            }
            p { "Pemeriksaan lengkap: " code { "tuk doctor --data " (app.dir.display()) } }
        }
    };
    Ok(super::staff_page(
        s,
        CONSOLE_HOME,
        "Kesehatan server",
        "Kesehatan",
        markup,
    ))
}

// ---------------------------------------------------------------------------------------
// The TUK's letterhead (kop surat): set once, printed on every A4 sheet.

/// Where the admin page keeps the letterhead: `DATA/letterhead.toml`.
pub(crate) const LETTERHEAD_FILE: &str = "letterhead.toml";

/// Where the letterhead in effect comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LetterheadSource {
    /// `DATA/letterhead.toml`, saved by `/admin/kop`: wins over the configuration file.
    Page,
    /// The `[letterhead]` table of this configuration file (read when `tuk serve` started).
    File(std::path::PathBuf),
    /// Neither: printouts carry no letterhead.
    Unset,
}

/// The TUK's letterhead and its source: `DATA/letterhead.toml` (written by `/admin/kop`)
/// if it exists, else the `[letterhead]` table of the configuration file `tuk serve` read
/// (`--config FILE`, `TUK_CONFIG`, `/etc/tuk/tuk.toml`), else empty.
pub(crate) fn letterhead_with_source(app: &App) -> (export::Letterhead, LetterheadSource) {
    match std::fs::read_to_string(app.dir.join(LETTERHEAD_FILE)) {
        Ok(t) => match toml::from_str(&t) {
            Ok(lh) => (lh, LetterheadSource::Page),
            Err(e) => {
                tracing::warn!(
                    "{LETTERHEAD_FILE} cannot be read ({e}); printing without letterhead: save it again on /admin/kop"
                );
                (export::Letterhead::default(), LetterheadSource::Page)
            }
        },
        Err(_) => match app.config_letterhead.get() {
            Some((file, lh)) => (lh.clone(), LetterheadSource::File(file.clone())),
            None => (export::Letterhead::default(), LetterheadSource::Unset),
        },
    }
}

/// The TUK's letterhead in effect (see [`letterhead_with_source`]).
pub(crate) fn letterhead(app: &App) -> export::Letterhead {
    letterhead_with_source(app).0
}

/// `/admin/kop`: the form.
pub(crate) fn letterhead_page(
    app: &App,
    s: &Staff,
    note: Option<(bool, String)>,
) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let (lh, source) = letterhead_with_source(app);
    let file = app.config_letterhead.get();
    let markup = html! {
        main.box.wide {
            h1 { "Kop surat dan penanda tangan" }
            p { "Dicetak di kartu peserta, daftar hadir, rekap nilai dan berita acara. Juga dapat diisi di bagian "
                code { "[letterhead]" } " berkas konfigurasi (" code { "/etc/tuk/tuk.toml" } " atau " code { "--config BERKAS" } "; dibaca saat server mulai). "
                strong { "Isian halaman ini yang dipakai bila keduanya ada." } }
            @if let Some((ok, text)) = &note { p class=(if *ok { "ok" } else { "error" }) role="status" { (text) } }
            p.sourceline role="status" {
                "Kop yang dipakai sekarang: "
                @match &source {
                    LetterheadSource::Page => { strong { "isian halaman ini" } " (tersimpan di " code { (app.dir.join(LETTERHEAD_FILE).display()) } ")" }
                    LetterheadSource::File(f) => { strong { "berkas konfigurasi" } " " code { (f.display()) } }
                    LetterheadSource::Unset => { strong { "belum diisi" } " — cetakan tanpa kop surat" }
                }
                "."
            }
            @if let (LetterheadSource::Page, Some((f, flh))) = (&source, file) {
                p.hint { "Berkas " code { (f.display()) } " juga berisi kop (" (flh.name) "), tetapi tidak dipakai karena isian halaman ini menang. " }
                form method="post" action="/admin/kop" {
                    (csrf_field(s))
                    input type="hidden" name="do" value="reset";
                    button type="submit" { "Hapus isian halaman ini dan pakai berkas konfigurasi" }
                }
            }
            form method="post" action="/admin/kop" {
                (csrf_field(s))
                label for="name" { "Nama TUK" }
                input #name name="name" maxlength="200" value=(lh.name) placeholder="TUK SMK Negeri 1 Contoh";
                label for="address" { "Alamat (satu baris, kota di akhir)" }
                input #address name="address" maxlength="300" value=(lh.address) placeholder="Jl. Pendidikan No. 1, Kota Contoh";
                label for="head" { "Nama Kepala TUK" }
                input #head name="head" maxlength="200" value=(lh.head);
                label for="head_nip" { "NIP Kepala TUK (kosongkan bila tidak ada)" }
                input #head_nip name="head_nip" maxlength="40" value=(lh.head_nip);
                label for="logo" { "Logo: berkas PNG/JPEG di server ini, paling besar 512 KiB (opsional)" }
                input #logo name="logo" maxlength="400" value=(lh.logo) placeholder="/etc/tuk/logo.png";
                button.primary type="submit" { "Simpan" }
            }
            (lh.html())
        }
    };
    Ok(super::staff_page(
        s,
        CONSOLE_HOME,
        "Kop surat TUK",
        "Kop surat",
        markup,
    ))
}

/// `POST /admin/kop`: saves the letterhead to the data folder.
pub(crate) fn save_letterhead(app: &App, req: &Req, s: &Staff) -> Result<Resp, Refusal> {
    admin_only(s)?;
    if req.form_field("do") == "reset" {
        let note = match std::fs::remove_file(app.dir.join(LETTERHEAD_FILE)) {
            Ok(()) => (
                true,
                "Isian halaman ini dihapus; kop dari berkas konfigurasi yang dipakai.".to_string(),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (true, "Tidak ada isian halaman ini.".to_string())
            }
            Err(e) => (
                false,
                format!("Tidak dapat menghapus: {e}. Periksa izin folder data."),
            ),
        };
        return letterhead_page(app, s, Some(note));
    }
    let field = |k: &str| req.form_field(k).trim().to_string();
    let lh = export::Letterhead {
        name: field("name"),
        address: field("address"),
        head: field("head"),
        head_nip: field("head_nip"),
        logo: field("logo"),
    };
    let too_long = [&lh.name, &lh.address, &lh.head, &lh.head_nip, &lh.logo]
        .iter()
        .any(|v| v.chars().count() > 400 || v.contains(['\n', '\r']));
    if too_long {
        return letterhead_page(
            app,
            s,
            Some((
                false,
                "Isian terlalu panjang atau berisi baris baru.".into(),
            )),
        );
    }
    if !lh.logo.is_empty() && lh.logo_data_url().is_none() {
        return letterhead_page(
            app,
            s,
            Some((
                false,
                format!(
                    "Logo {} tidak dapat dibaca: harus berkas PNG atau JPEG paling besar 512 KiB yang dapat dibaca server.",
                    lh.logo
                ),
            )),
        );
    }
    let saved = toml::to_string(&lh)
        .map_err(anyhow::Error::from)
        .and_then(|t| crate::fsutil::write_atomic(&app.dir.join(LETTERHEAD_FILE), t.as_bytes()));
    let note = match saved {
        Ok(()) => (true, "Kop surat disimpan.".to_string()),
        Err(e) => (
            false,
            format!("Tidak dapat menyimpan: {e:#}. Periksa ruang disk dan izin folder data."),
        ),
    };
    letterhead_page(app, s, Some(note))
}
