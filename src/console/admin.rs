//! Admin-only pages: import a package (upload, see the verified header and counts, then
//! confirm), manage accounts, and the data folder's health.

use std::convert::Infallible;

use hyper::StatusCode;
use maud::html;

use super::{Staff, csrf_field};
use crate::app::App;
use crate::exam::{self, Refusal, Role};
use crate::package;
use crate::server::http::{self, Req, Resp};
use crate::server::participant::page as layout;

fn admin_only(s: &Staff) -> Result<(), Refusal> {
    if s.role == Role::Admin {
        Ok(())
    } else {
        Err(exam::FORBIDDEN)
    }
}

fn pending_dir(app: &App) -> std::path::PathBuf {
    app.dir.join("pending")
}

pub fn import_page(req: &Req, s: &Staff, note: Option<(bool, String)>) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let markup = html! {
        header.bar { a href="/admin" { "◀ Konsol" } span { "Impor paket soal" } }
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
    Ok(http::html(
        StatusCode::OK,
        layout(req, "Impor paket", markup),
    ))
}

/// Step 1: receive the file, verify and open it, show what is inside, keep it pending.
pub async fn upload(app: &App, req: &Req, s: &Staff) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let ct = req
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(ct).map_err(|_| Refusal::new(400, "malformed_form"))?;
    let body = req.body.clone();
    let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut file = None;
    while let Ok(Some(field)) = mp.next_field().await {
        if field.name() == Some("package") {
            file = field.bytes().await.ok();
        }
    }
    let bytes = file.ok_or(Refusal::new(400, "malformed_form"))?;
    let trust = app.trust().map_err(|_| exam::STORE_FAILED)?;
    let checked = package::verify(&bytes, &trust).and_then(|p| {
        let c = p.open(&app.key)?;
        Ok((p.header().clone(), p.file_hash().to_string(), c.counts()))
    });
    let (header, hash, (tests, items, participants, sessions)) = match checked {
        Ok(x) => x,
        Err(e) => return import_page(req, s, Some((false, format!("Paket DITOLAK: {e:#}")))),
    };
    let dir = pending_dir(app);
    std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(dir.join(format!("{hash}.tukpkg")), &bytes))
        .map_err(|_| exam::STORE_FAILED)?;
    let markup = html! {
        header.bar { a href="/admin" { "◀ Konsol" } span { "Impor paket soal" } }
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
    Ok(http::html(
        StatusCode::OK,
        layout(req, "Impor paket", markup),
    ))
}

/// Step 2: import the pending file the admin looked at.
pub async fn confirm(app: &App, req: &Req, s: &Staff) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let hash = req
        .form()
        .get("hash")
        .and_then(|v| v.first().cloned())
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(exam::BAD_INPUT)?;
    let path = pending_dir(app).join(format!("{hash}.tukpkg"));
    let bytes = std::fs::read(&path).map_err(|_| exam::BAD_INPUT)?;
    let actor = format!("staff:{}", s.name);
    // Hashing new participants' passwords takes seconds: off the async workers.
    let app_ptr: &App = app;
    let result = tokio::task::block_in_place(|| app_ptr.import(&bytes, &actor));
    let _ = std::fs::remove_file(&path);
    match result {
        Ok(r) if r.already => import_page(
            req,
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
            req,
            s,
            Some((
                true,
                format!(
                    "Paket {} versi {} diimpor: {} sesi, {} peserta, {} kata sandi baru.",
                    r.package_id, r.version, r.sessions, r.participants, r.new_credentials
                ),
            )),
        ),
        Err(e) => import_page(req, s, Some((false, format!("Impor gagal: {e:#}")))),
    }
}

pub fn users_page(
    app: &App,
    req: &Req,
    s: &Staff,
    note: Option<(bool, String)>,
) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let ex = app.read();
    let markup = html! {
        header.bar { a href="/admin" { "◀ Konsol" } span { "Akun" } }
        main.box.wide {
            h1 { "Akun admin dan pengawas" }
            @if let Some((ok, text)) = &note { p class=(if *ok { "ok" } else { "error" }) role="status" { (text) } }
            table.board {
                thead { tr { th { "Nama" } th { "Peran" } } }
                tbody { @for u in ex.users.values() { tr { td { (u.name) } td { (if u.role == Role::Admin { "admin" } else { "pengawas" }) } } } }
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
    Ok(http::html(StatusCode::OK, layout(req, "Akun", markup)))
}

pub async fn add_user(app: &App, req: &Req, s: &Staff) -> Result<Resp, Refusal> {
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
            req,
            s,
            Some((false, "Kata sandi minimal 8 karakter.".into())),
        );
    }
    if app.read().users.contains_key(&name) {
        return users_page(
            app,
            req,
            s,
            Some((false, format!("Akun {name} sudah ada."))),
        );
    }
    let actor = format!("staff:{}", s.name);
    let r = tokio::task::block_in_place(|| app.add_user_blocking(&name, role, &password, &actor));
    match r {
        Ok(()) => users_page(
            app,
            req,
            s,
            Some((true, format!("Akun {name} ditambahkan."))),
        ),
        Err(e) => users_page(app, req, s, Some((false, format!("{e:#}")))),
    }
}

pub fn health_page(app: &App, req: &Req, s: &Staff) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let db = std::fs::metadata(app.dir.join(crate::store::DB_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    let (metrics, sessions, attempts) = {
        let ex = app.read();
        (ex.metrics.clone(), ex.sessions.len(), ex.attempts.len())
    };
    let markup = html! {
        header.bar { a href="/admin" { "◀ Konsol" } span { "Kesehatan server" } }
        main.box.wide {
            h1 { "Kesehatan folder data" }
            table.facts {
                tr { th { "Folder data" } td.mono { (app.dir.display()) } }
                tr { th { "Ukuran basis data" } td { (db / 1024) " KiB" } }
                tr { th { "Sesi / percobaan" } td { (sessions) " / " (attempts) } }
                tr { th { "Commit ke disk" } td { (metrics.commits) " (batch terbesar " (metrics.batch_max) ")" } }
                tr { th { "Jawaban tersimpan sejak server hidup" } td { (metrics.answers_saved) } }
            }
            p { "Pemeriksaan lengkap: " code { "tuk doctor --data " (app.dir.display()) } }
        }
    };
    Ok(http::html(StatusCode::OK, layout(req, "Kesehatan", markup)))
}
