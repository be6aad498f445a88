//! The admin's "Seal" and "Upload" buttons for a closed session: seal the session into a
//! `.tukres` bundle (kept in `DATA/results/`, downloadable for a USB stick), upload it to the
//! UPT over HTTPS and show the UPT's signed receipt. The work itself is `seal` and `upload`.

use crate::exam::SessionKey;
use std::path::PathBuf;

use hyper::StatusCode;
use hyper::header::{CONTENT_DISPOSITION, HeaderValue};
use maud::html;

use super::{Staff, csrf_field};
use crate::app::App;
use crate::exam::events::{Actor, Event};
use crate::exam::{Refused, Role};
use crate::server::Refusal;
use crate::server::http::{self, Req, Resp};

fn bundle_path(app: &App, skey: &SessionKey) -> PathBuf {
    app.dir
        .join("results")
        .join(format!("{}.tukres", skey.replace('/', "_")))
}

fn admin_only(s: &Staff) -> Result<(), Refusal> {
    if s.role == Role::Admin {
        Ok(())
    } else {
        Err(Refused::Forbidden.into())
    }
}

fn result_page(s: &Staff, skey: &SessionKey, note: (bool, String), sealed: bool) -> Resp {
    let markup = html! {
        main.box.wide {
            h1 { "Segel dan kirim hasil" }
            p class=(if note.0 { "ok" } else { "error" }) role="status" { (note.1) }
            @if sealed {
                p { a.button href={"/admin/sesi/" (skey) "/hasil.tukres"} { "Unduh berkas hasil (.tukres) untuk USB" } }
                form method="post" action={"/admin/sesi/" (skey) "/unggah"} {
                    (csrf_field(s))
                    label for="to" { "Alamat penerima UPT (https://…)" }
                    input #to name="to" placeholder="https://upt.example.id:8443" required;
                    label for="cert" { "Sertifikat UPT di server ini (opsional, berkas .pem)" }
                    input #cert name="cert" placeholder="/etc/tuk/upt-cert.pem";
                    button.primary type="submit" { "Unggah ke UPT" }
                }
            }
        }
    };
    let board = format!("/admin/sesi/{skey}");
    let label = html! { "Hasil " (skey) };
    super::staff_page(s, (&board, "◀ Papan sesi"), label, "Hasil", markup)
}

/// Seals the (closed) session and keeps the bundle in the data folder.
///
/// Asks first (`confirmed=1`). A session sealed before is sealed again only as an explicit
/// re-seal (`reseal=1`): the `reseal` event naming the superseded bundle goes into the
/// session's log (and so into the new bundle); both bundles stay in the store and the
/// `_tuk` log.
pub(crate) fn seal(app: &App, req: &Req, s: &Staff, skey: &SessionKey) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let earlier = crate::seal::tuk::sealed_records(app, skey).unwrap_or_default();
    let reseal = req.form_field("reseal") == "1";
    if req.form_field("confirmed") != "1" {
        let mut v = std::collections::HashMap::new();
        v.insert(
            "do".to_string(),
            if earlier.is_empty() { "seal" } else { "reseal" }.to_string(),
        );
        return super::actions::action_page(app, s, skey, &v);
    }
    if let Some(last) = earlier.last() {
        if !reseal {
            return Ok(super::actions::refused_page(
                skey,
                "",
                Refused::AlreadySealed.into(),
            ));
        }
        let (k, who) = (skey.to_string(), Actor::Staff(s.name.clone()));
        let ev = Event::Reseal {
            superseded: last.blake3.clone(),
            superseded_created: last.created.clone(),
            bundles_before: earlier.len(),
        };
        let logged = tokio::task::block_in_place(|| {
            app.writer.run_blocking(move |ex: &mut crate::exam::Exam| {
                let ev = ex.log(&k, crate::clock::now_ms(), who, ev);
                (vec![ev], ())
            })
        });
        if logged.is_err() {
            return Err(Refused::StoreFailed.into());
        }
    }
    let sealed = tokio::task::block_in_place(|| crate::seal::tuk::seal_session(app, skey, false));
    let bytes = match sealed {
        Ok(b) => b,
        Err(e) => {
            return Ok(result_page(
                s,
                skey,
                (false, format!("Tidak dapat menyegel: {e:#}")),
                false,
            ));
        }
    };
    let path = bundle_path(app, skey);
    let written = std::fs::create_dir_all(path.parent().unwrap_or(&app.dir))
        .map_err(anyhow::Error::from)
        .and_then(|_| crate::fsutil::write_atomic(&path, &bytes));
    if let Err(e) = written {
        return Ok(result_page(
            s,
            skey,
            (
                false,
                format!("Tidak dapat menulis {}: {e:#}", path.display()),
            ),
            false,
        ));
    }
    let note = format!(
        "Berhasil: hasil {}disegel: {} ({} byte, blake3 {}).",
        if earlier.is_empty() {
            ""
        } else {
            "disegel ulang (bundel sebelumnya digantikan, keduanya tercatat di log) dan "
        },
        path.display(),
        bytes.len(),
        &blake3::hash(&bytes).to_hex()[..16]
    );
    Ok(result_page(s, skey, (true, note), true))
}

pub(crate) fn download(app: &App, s: &Staff, skey: &SessionKey) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let bytes =
        std::fs::read(bundle_path(app, skey)).map_err(|_| crate::server::refusal::NOT_FOUND)?;
    let mut r = http::response(StatusCode::OK, "application/octet-stream", bytes);
    let name = format!("attachment; filename=\"{}.tukres\"", skey.replace('/', "_"));
    if let Ok(v) = HeaderValue::from_str(&name) {
        r.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

pub(crate) fn upload(app: &App, req: &Req, s: &Staff, skey: &SessionKey) -> Result<Resp, Refusal> {
    admin_only(s)?;
    let (to, cert) = (req.form_field("to"), req.form_field("cert"));
    let Ok(bytes) = std::fs::read(bundle_path(app, skey)) else {
        return Ok(result_page(
            s,
            skey,
            (false, "Segel hasil terlebih dahulu.".into()),
            false,
        ));
    };
    let cert_path = Some(cert.trim())
        .filter(|c| !c.is_empty())
        .map(std::path::Path::new);
    let target = match crate::upload::Target::parse(&to, cert_path) {
        Ok(t) => t,
        Err(e) => return Ok(result_page(s, skey, (false, format!("{e:#}")), true)),
    };
    // The upload's progress callback is not `Send`; run it to completion on this thread.
    let sent = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(crate::upload::upload(
            &bytes,
            &target,
            &app.key,
            &|_| {},
        ))
    });
    let note = match sent {
        Ok(u) => {
            match tokio::task::block_in_place(|| crate::seal::tuk::store_receipt(app, &u.signed)) {
                Ok(_) => (
                    true,
                    format!(
                        "Diterima UPT {} pada {}{}: tanda terima tersimpan ({} peserta).",
                        u.receipt.upt,
                        u.receipt.received,
                        if u.already {
                            " (sudah pernah diterima)"
                        } else {
                            ""
                        },
                        u.receipt.participants
                    ),
                ),
                Err(e) => (
                    false,
                    format!("Terkirim, tetapi tanda terima tidak dapat disimpan: {e:#}"),
                ),
            }
        }
        Err(e) => (
            false,
            format!(
                "Gagal mengunggah: {e:#}. Bawa berkas .tukres ke UPT dengan USB bila tidak ada internet."
            ),
        ),
    };
    Ok(result_page(s, skey, note, true))
}
