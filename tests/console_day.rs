//! The exam day at 1024×768 (issue 13), in real Chromium against the real `tuk` binary:
//! the proctor's board with 40 working participants, the action pages that ask and then
//! report, a sealed session that cannot be silently re-opened, unlocking a participant who
//! has not arrived, and the participant's pages (the bottom bar on every item, an outage,
//! a pause, the end seen from another browser and by a collected participant).
//!
//! Screenshots: `target/browser-artifacts/day-*.png`. Needs `chromium` and `chromedriver`
//! on the PATH (they FAIL otherwise, on purpose).

#![allow(clippy::await_holding_lock)]

mod common;

#[path = "common/chrome.rs"]
mod chrome;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use fantoccini::Client;
use serde_json::{Value, json};

use chrome::{
    button, click_nav, css, css_all, link, path, poll, run, screenshot, serial, staff_login, text,
    wait_path, wait_text,
};
use common::{Prepared, Server};

const S1: &str = "demo-kk-a-2026/S1";
const ADMIN_PASSWORD: &str = "admin-password-for-tests";
const WINDOW: &str = "1024,768";
const OFFLINE: &str = "Koneksi ke server terputus — jawaban Anda aman di komputer ini dan akan dikirim otomatis. Jangan tutup halaman ini.";

fn demo_admin_password(srv: &Server) -> String {
    srv.stdout()
        .lines()
        .find_map(|l| l.strip_prefix("admin: admin "))
        .expect("admin password")
        .trim()
        .to_string()
}

/// Waits until the element's text is exactly `want` ("tersimpan", not "belum tersimpan").
async fn wait_exact(c: &Client, sel: &str, want: &str) -> Result<()> {
    poll(
        &format!("{sel} = {want:?}"),
        Duration::from_secs(20),
        || async { Ok((text(c, sel).await? == want).then_some(())) },
    )
    .await
}

async fn js(c: &Client, script: &str) -> Result<Value> {
    Ok(c.execute(script, vec![]).await?)
}

/// Bytes (UTF-8) of the current page's HTML as the server sends it (fetched again with
/// the same cookies), and of the URLs of its stylesheet and scripts.
async fn page_bytes(c: &Client) -> Result<(u64, u64)> {
    let v = js(
        c,
        "function get(u){var x=new XMLHttpRequest();x.open('GET',u,false);x.send();\
         return unescape(encodeURIComponent(x.responseText)).length;}\
         var html=get(location.href), assets=0, i, l=document.querySelectorAll('link[rel=stylesheet],script[src]');\
         for(i=0;i<l.length;i++){assets+=get(l[i].href||l[i].src);} return [html, assets];",
    )
    .await?;
    Ok((v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0)))
}

/// The admin over HTTP (no browser): actions as their confirmation page posts them.
struct Admin {
    c: common::Client,
    csrf: String,
}

impl Admin {
    async fn login(srv: &Server, password: &str) -> Admin {
        let c = srv.client();
        let r = c
            .post_form("/admin/masuk", &[("user", "admin"), ("password", password)])
            .await;
        assert_eq!(r.status, 303, "admin login: {}", r.text());
        let home = c.get("/admin").await.text();
        let at = home.find("name=\"csrf\" value=\"").expect("csrf") + 19;
        let csrf = home[at..at + home[at..].find('"').unwrap()].to_string();
        Admin { c, csrf }
    }

    async fn act(&self, fields: &[(&str, &str)]) -> common::Response {
        let mut f = fields.to_vec();
        f.push(("csrf", &self.csrf));
        f.push(("confirmed", "1"));
        self.c
            .post_form(&format!("/admin/sesi/{S1}/aksi"), &f)
            .await
    }
}

/// A participant working through the JSON API from its own address (127.0.0.x).
struct Participant {
    number: String,
    http: common::Client,
}

impl Participant {
    async fn sit(srv: &Server, ip: Ipv4Addr, login: &(String, String), token: &str) -> Participant {
        let http = srv.client_from(ip);
        let r = http
            .post(
                "/api/v1/login",
                &json!({"participant": login.0, "password": login.1}),
            )
            .await;
        assert_eq!(r.status, 200, "login {}: {}", login.0, r.text());
        let r = http.post("/api/v1/start", &json!({"token": token})).await;
        assert_eq!(r.status, 200, "start {}: {}", login.0, r.text());
        Participant {
            number: login.0.clone(),
            http,
        }
    }

    async fn answer(&self, n: usize) -> common::Response {
        let it = self.http.get(&format!("/api/v1/items/{n}")).await.json();
        let choice = it["options"][0]["id"].clone();
        self.http
            .put(
                &format!("/api/v1/answers/{}", it["id"].as_str().unwrap_or("")),
                &json!({"choice": [choice], "doubtful": false, "seq": n}),
            )
            .await
    }
}

/// Login card → token → confirmation → first question, in the browser.
async fn sit_in_browser(
    c: &Client,
    base: &str,
    login: &(String, String),
    token: &str,
) -> Result<()> {
    c.goto(&format!("{base}/")).await?;
    css(c, "#participant").await?.send_keys(&login.0).await?;
    css(c, "#password").await?.send_keys(&login.1).await?;
    click_nav(c, css(c, "button.primary").await?).await?;
    wait_path(c, "/token").await?;
    css(c, "#token").await?.send_keys(token).await?;
    click_nav(c, css(c, "button.primary").await?).await?;
    wait_path(c, "/konfirmasi").await?;
    click_nav(c, css(c, "form[action=\"/mulai\"] button").await?).await?;
    wait_path(c, "/soal/1").await
}

/// Is the element entirely inside the viewport (no scrolling needed to see it)?
async fn in_view(c: &Client, sel: &str) -> Result<bool> {
    let v = js(
        c,
        &format!(
            "var e=document.querySelector('{sel}'); if(!e) return false; var r=e.getBoundingClientRect();\
             return r.width>0 && r.top>=0 && r.left>=0 && r.bottom<=window.innerHeight && r.right<=window.innerWidth;"
        ),
    )
    .await?;
    Ok(v == true)
}

async fn no_horizontal_scroll(c: &Client) -> Result<bool> {
    Ok(js(
        c,
        "return document.documentElement.scrollWidth <= window.innerWidth;",
    )
    .await?
        == true)
}

// ---------------------------------------------------------------------------------------
// The proctor
// ---------------------------------------------------------------------------------------

/// 40 participants work in S1 (the demo roster's S2 moved into S1). The board fits
/// 1024×768 without horizontal scrolling, every row's "Tindakan" is reachable, rows update
/// in place without a reload; then every consequential action asks (saying how many) and
/// reports; a sealed session is not re-opened without an admin's reason, which then shows
/// on the board and in the minutes; re-sealing says the earlier bundle is superseded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_and_actions_with_40_participants() {
    let _serial = serial();
    let t0 = Instant::now();
    let p = Prepared::new(
        |src| {
            let roster = src.join("roster.csv");
            let text = std::fs::read_to_string(&roster).unwrap();
            std::fs::write(&roster, text.replace(",S2,", ",S1,")).unwrap();
        },
        S1,
    );
    let srv = Server::serve(p);
    let base = srv.origin();
    let mut ps = Vec::new();
    for (i, login) in srv.logins.iter().enumerate().take(40) {
        let ip = Ipv4Addr::new(127, 0, 1, 2 + i as u8);
        let p = Participant::sit(&srv, ip, login, &srv.token).await;
        for n in 1..=(1 + i % 4) {
            let r = p.answer(n).await;
            assert_eq!(r.status, 200, "save: {}", r.text());
        }
        ps.push(p);
    }
    let ps = &ps;
    run("day-board", true, WINDOW, |c| async move {
        staff_login(&c, &base, "admin", ADMIN_PASSWORD).await?;
        c.goto(&format!("{base}/admin/sesi/{S1}")).await?;
        let rows = css_all(&c, "table.board tbody tr").await?;
        ensure!(rows.len() == 40, "40 rows, got {}", rows.len());
        ensure!(no_horizontal_scroll(&c).await?, "no horizontal scroll at 1024x768");
        ensure!(text(&c, "#state").await?.starts_with("DIBUKA"), "open banner");
        // Every row's one "Tindakan" link is within the page's width.
        let right = js(
            &c,
            "var m=0,l=document.querySelectorAll('td.c-act a'),i;\
             for(i=0;i<l.length;i++){m=Math.max(m,l[i].getBoundingClientRect().right);} return [l.length,m,window.innerWidth];",
        )
        .await?;
        ensure!(
            right[0] == 40 && right[1].as_f64() <= right[2].as_f64(),
            "40 Tindakan links inside the window: {right}"
        );
        let (bytes, _) = page_bytes(&c).await?;
        eprintln!("MEASURE board HTML with 40 participants: {bytes} bytes");
        let seen = text(&c, "table.board tbody tr td.c-seen").await?;
        ensure!(seen.len() == 8 && seen.contains(':'), "last activity hh:mm:ss: {seen:?}");
        screenshot(&c, "day-board-40").await?;

        // Live: a save shows up in place; the page is never reloaded.
        js(&c, "window.__kept = 1; return 1;").await?;
        let r = ps[0].answer(10).await;
        ensure!(r.status == 200);
        let number = ps[0].number.clone();
        poll("the row to show 2/60 in place", Duration::from_secs(15), || async {
            let t = text(&c, &format!("tr[data-p=\"{number}\"] td.c-ans")).await?;
            Ok((t == "2/60").then_some(()))
        })
        .await?;
        ensure!(js(&c, "return window.__kept;").await? == 1, "no reload");

        // Add time to everybody: asks with the count, then reports.
        click_nav(&c, link(&c, "Tambah waktu semua…").await?).await?;
        wait_text(&c, "ul.will", "40 peserta yang sedang mengerjakan mendapat tambahan waktu").await?;
        screenshot(&c, "day-confirm-time-all").await?;
        css(&c, "input[name=reason]").await?.send_keys("Listrik padam").await?;
        click_nav(&c, button(&c, "Ya, tambahkan waktu").await?).await?;
        wait_text(&c, "p.flash", "40 peserta mendapat tambahan 5 menit").await?;

        // Finish one participant from their page.
        let who = ps[1].number.clone();
        click_nav(
            &c,
            css(&c, &format!("tr[data-p=\"{who}\"] td.c-act a")).await?,
        )
        .await?;
        wait_path(&c, &format!("/admin/sesi/{S1}/peserta/{who}")).await?;
        ensure!(text(&c, "table.timeline").await?.contains("jawaban disimpan"), "timeline of saves");
        ensure!(text(&c, "table.timeline").await?.contains("PC 127.0.1.3"), "timeline of PCs");
        screenshot(&c, "day-participant").await?;
        click_nav(&c, button(&c, "Selesaikan…").await?).await?;
        wait_text(&c, "ul.will", "dikumpulkan sekarang: 2 dari 60 soal terjawab").await?;
        click_nav(&c, button(&c, "Ya, kumpulkan pekerjaannya").await?).await?;
        wait_text(&c, "p.flash", "dikumpulkan").await?;
        // Adding time to a collected attempt is refused in the proctor's words.
        c.goto(&format!("{base}/admin/sesi/{S1}")).await?;
        js(
            &c,
            &format!(
                "var f=document.createElement('form');f.method='post';f.action='/admin/sesi/{S1}/aksi';\
                 var v={{csrf:document.getElementById('board').getAttribute('data-csrf'),do:'time',participant:'{who}',minutes:'5',reason:'uji'}};\
                 for(var k in v){{var i=document.createElement('input');i.type='hidden';i.name=k;i.value=v[k];f.appendChild(i);}}\
                 document.body.appendChild(f);f.submit();return 1;"
            ),
        )
        .await?;
        wait_text(&c, "p.error", "sudah dikumpulkan: waktu tidak dapat ditambahkan").await?;
        ensure!(css_all(&c, "main button").await?.is_empty(), "nothing misleading offered");

        // Pause: asks, reports, and a participant's save is refused until the resume.
        c.goto(&format!("{base}/admin/sesi/{S1}")).await?;
        click_nav(&c, link(&c, "Hentikan sementara…").await?).await?;
        wait_text(&c, "ul.will", "Waktu 39 peserta yang sedang mengerjakan berhenti").await?;
        css(&c, "input[name=reason]").await?.send_keys("Listrik padam").await?;
        click_nav(&c, button(&c, "Ya, hentikan sementara").await?).await?;
        wait_text(&c, "p.flash", "waktu 39 peserta berhenti").await?;
        ensure!(text(&c, "#state").await?.starts_with("DIHENTIKAN"), "paused banner");
        let r = ps[2].answer(20).await;
        ensure!(r.status == 409 && r.json()["code"] == "session_paused", "refused: {}", r.text());
        ensure!(
            r.json()["message"].as_str().unwrap_or("").contains("Ujian dihentikan sementara oleh pengawas"),
            "the refusal says why: {}",
            r.text()
        );
        click_nav(&c, button(&c, "Lanjutkan sesi").await?).await?;
        wait_text(&c, "p.flash", "sesi dilanjutkan").await?;

        // Close is refused while people work; force-close asks with the count.
        click_nav(&c, link(&c, "Tutup sesi…").await?).await?;
        wait_text(&c, "p.error", "39 peserta masih mengerjakan").await?;
        c.goto(&format!("{base}/admin/sesi/{S1}")).await?;
        click_nav(&c, link(&c, "Tutup paksa (kumpulkan semua)…").await?).await?;
        wait_text(&c, "ul.will", "39 peserta yang masih mengerjakan akan dikumpulkan").await?;
        click_nav(&c, button(&c, "Ya, kumpulkan semua dan tutup sesi").await?).await?;
        wait_text(&c, "p.flash", "39 peserta yang masih mengerjakan dikumpulkan").await?;
        ensure!(text(&c, "#state").await?.starts_with("DITUTUP"), "closed banner");

        // Seal: asks, then reports.
        click_nav(&c, link(&c, "Segel hasil…").await?).await?;
        wait_text(&c, "ul.will", "Hasil 40 peserta").await?;
        click_nav(&c, button(&c, "Ya, segel hasil").await?).await?;
        wait_text(&c, "p.ok", "Berhasil: hasil disegel").await?;
        c.goto(&format!("{base}/admin/sesi/{S1}")).await?;
        ensure!(text(&c, "#state").await?.starts_with("DITUTUP DAN DISEGEL"), "sealed banner");

        // A sealed session is not re-opened silently: without a reason it is refused.
        click_nav(&c, link(&c, "Buka kembali (sudah disegel)…").await?).await?;
        wait_text(&c, "ul.will", "sudah disegel").await?;
        js(&c, "document.querySelector('input[name=reason]').removeAttribute('required'); return 1;").await?;
        click_nav(&c, button(&c, "Ya, buka kembali").await?).await?;
        wait_text(&c, "p.error", "alasan").await?;
        c.goto(&format!("{base}/admin/sesi/{S1}")).await?;
        ensure!(text(&c, "#state").await?.starts_with("DITUTUP DAN DISEGEL"), "still sealed");
        click_nav(&c, link(&c, "Buka kembali (sudah disegel)…").await?).await?;
        css(&c, "input[name=reason]")
            .await?
            .send_keys("Peserta susulan atas izin UPT")
            .await?;
        click_nav(&c, button(&c, "Ya, buka kembali").await?).await?;
        wait_text(&c, "p.flash", "dibuka kembali").await?;
        wait_text(&c, "#reopened", "Peserta susulan atas izin UPT").await?;
        screenshot(&c, "day-board-reopened").await?;
        c.goto(&format!("{base}/admin/sesi/{S1}/berita-acara")).await?;
        ensure!(
            c.source().await?.contains("dibuka kembali oleh admin"),
            "the minutes list the re-opening"
        );

        // Close again and re-seal: says the earlier bundle is superseded.
        c.goto(&format!("{base}/admin/sesi/{S1}")).await?;
        click_nav(&c, link(&c, "Tutup sesi…").await?).await?;
        click_nav(&c, button(&c, "Ya, tutup sesi").await?).await?;
        wait_text(&c, "p.flash", "sesi ditutup").await?;
        click_nav(&c, link(&c, "Segel ulang…").await?).await?;
        wait_text(&c, "ul.will", "Bundel sebelumnya").await?;
        wait_text(&c, "ul.will", "digantikan").await?;
        click_nav(&c, button(&c, "Ya, segel ulang").await?).await?;
        wait_text(&c, "p.ok", "disegel ulang").await?;
        c.goto(&format!("{base}/admin/log")).await?;
        let log = c.source().await?;
        ensure!(
            log.matches("Hasil disegel").count() >= 2,
            "both seals are in the log"
        );
        c.goto(&format!("{base}/admin/log?chain={S1}")).await?;
        ensure!(
            c.source().await?.contains("Segel ulang (bundel sebelumnya digantikan)"),
            "the re-seal is in the session's log"
        );
        Ok(())
    })
    .await;
    eprintln!("board test took {:.1} s", t0.elapsed().as_secs_f64());
}

/// Without JavaScript the board refreshes itself but holds nothing to type into; the
/// reason typed on a participant's page survives (that page does not refresh). A
/// participant locked out before arriving is unlocked from the board.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_js_typing_survives_and_a_locked_newcomer_is_unlocked() {
    let _serial = serial();
    let srv = Server::demo();
    let pw = demo_admin_password(&srv);
    let base = srv.origin();
    // Participant 6 (not arrived) types wrong passwords from 127.0.0.9 until locked.
    let victim = srv.logins[5].clone();
    let pc = srv.client_from(Ipv4Addr::new(127, 0, 0, 9));
    let mut locked = false;
    for _ in 0..12 {
        let r = pc
            .post(
                "/api/v1/login",
                &json!({"participant": victim.0, "password": "salah-salah"}),
            )
            .await;
        if r.status == 429 {
            locked = true;
            break;
        }
    }
    assert!(locked, "the login is locked after repeated wrong passwords");
    let srv = &srv;
    let victim = &victim;
    run("day-noscript", false, WINDOW, |c| async move {
        staff_login(&c, &base, "admin", &pw).await?;
        c.goto(&format!("{base}/admin/sesi/{S1}")).await?;
        ensure!(
            css_all(
                &c,
                "main input:not([type=hidden]), main textarea, main select"
            )
            .await?
            .is_empty(),
            "the board holds no field a refresh could wipe"
        );
        ensure!(no_horizontal_scroll(&c).await?, "no horizontal scroll");
        // A participant at work, then their page: type a reason, wait past a refresh.
        let p =
            Participant::sit(srv, Ipv4Addr::new(127, 0, 0, 2), &srv.logins[0], &srv.token).await;
        c.goto(&format!("{base}/admin/sesi/{S1}/peserta/{}", p.number))
            .await?;
        let field = css(&c, "#finish-reason").await?;
        field.clear().await?;
        field.send_keys("PC terbakar").await?;
        tokio::time::sleep(Duration::from_secs(7)).await;
        ensure!(
            css(&c, "#finish-reason")
                .await?
                .prop("value")
                .await?
                .as_deref()
                == Some("PC terbakar"),
            "the typed reason is still there"
        );
        screenshot(&c, "day-participant-noscript").await?;

        // The locked newcomer: "Buka kunci" on the board's row.
        c.goto(&format!("{base}/admin/sesi/{S1}")).await?;
        let row = format!("tr[data-p=\"{}\"]", victim.0);
        ensure!(
            text(&c, &format!("{row} td.c-st"))
                .await?
                .contains("belum datang")
        );
        click_nav(&c, css(&c, &format!("{row} form.lock button")).await?).await?;
        wait_text(&c, "p.flash", "kunci login dibuka").await?;
        let r = pc
            .post(
                "/api/v1/login",
                &json!({"participant": victim.0, "password": victim.1}),
            )
            .await;
        ensure!(r.status == 200, "the newcomer logs in: {}", r.text());
        Ok(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// The participant
// ---------------------------------------------------------------------------------------

/// At 1024×768: the wrong-password page keeps the number; "Mulai Mengerjakan" is visible
/// without scrolling; the bottom bar (Sebelumnya · Ragu-ragu · Berikutnya · Selesai) is in
/// view on every item at normal and large text (and the largest step on a few); the
/// switches show their state; a doubtful item without an answer counts as unanswered; the
/// finish page shows the timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participant_pages_at_1024() {
    let _serial = serial();
    let srv = Server::demo();
    let base = srv.origin();
    let login = srv.logins[0].clone();
    let token = srv.token.clone();
    run("day-participant-pages", true, WINDOW, |c| async move {
        c.goto(&format!("{base}/")).await?;
        css(&c, "#participant").await?.send_keys(&login.0).await?;
        css(&c, "#password").await?.send_keys("salah").await?;
        click_nav(&c, css(&c, "button.primary").await?).await?;
        ensure!(
            css(&c, "#participant")
                .await?
                .prop("value")
                .await?
                .as_deref()
                == Some(login.0.as_str()),
            "the wrong-password page keeps the number"
        );
        css(&c, "#password").await?.send_keys(&login.1).await?;
        click_nav(&c, css(&c, "button.primary").await?).await?;
        wait_path(&c, "/token").await?;
        css(&c, "#token").await?.send_keys(&token).await?;
        click_nav(&c, css(&c, "button.primary").await?).await?;
        wait_path(&c, "/konfirmasi").await?;
        ensure!(
            in_view(&c, "form[action=\"/mulai\"] button").await?,
            "Mulai Mengerjakan visible without scrolling"
        );
        screenshot(&c, "day-confirm-start").await?;
        click_nav(&c, css(&c, "form[action=\"/mulai\"] button").await?).await?;
        wait_path(&c, "/soal/1").await?;
        let (html, assets) = page_bytes(&c).await?;
        eprintln!("MEASURE question page: HTML {html} bytes, CSS+JS {assets} bytes");
        ensure!(html < 50_000, "question page under 50 KB: {html}");
        screenshot(&c, "day-question").await?;

        let bar = [
            ".bottombar button.prev",
            ".bottombar label.doubt",
            ".bottombar button.primary",
            ".bottombar button.finish",
        ];
        for (size, items) in [("normal", 60usize), ("large", 60), ("xlarge", 4)] {
            c.goto(&format!("{base}/pref?font={size}&back=/soal/1"))
                .await?;
            for n in 1..=items {
                c.goto(&format!("{base}/soal/{n}")).await?;
                for sel in bar {
                    ensure!(
                        in_view(&c, sel).await?,
                        "{sel} in view on item {n} at {size} text"
                    );
                }
                ensure!(
                    no_horizontal_scroll(&c).await?,
                    "no horizontal scroll on {n} at {size}"
                );
            }
            screenshot(&c, &format!("day-question-{size}")).await?;
        }
        c.goto(&format!("{base}/pref?font=normal&back=/soal/3"))
            .await?;
        ensure!(
            css(&c, "header .prefs button[value=\"font-normal\"]")
                .await?
                .attr("aria-pressed")
                .await?
                .as_deref()
                == Some("true"),
            "the size switch shows its state"
        );
        // Item 3: doubtful without an answer; item 4 answered.
        css(&c, ".bottombar label.doubt").await?.click().await?;
        wait_exact(&c, "#status", "tersimpan").await?;
        c.goto(&format!("{base}/soal/4")).await?;
        css(&c, "label.option").await?.click().await?;
        wait_exact(&c, "#status", "tersimpan").await?;
        click_nav(&c, css(&c, ".bottombar button.finish").await?).await?;
        wait_path(&c, "/selesai").await?;
        let page = text(&c, "main").await?;
        ensure!(
            page.contains("Soal belum dijawab (59)") && page.contains("Soal ragu-ragu (0)"),
            "doubtful without an answer is unanswered: {page}"
        );
        let t1 = text(&c, "#timer strong").await?;
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let t2 = text(&c, "#timer strong").await?;
        ensure!(
            t1 != t2 && t2.len() == 8,
            "the finish page's timer runs: {t1} → {t2}"
        );
        screenshot(&c, "day-finish").await?;
        Ok(())
    })
    .await;
}

/// The server is killed while a participant works: "Berikutnya" keeps them on the page
/// with the Indonesian message; after the restart the page goes on and the answer is
/// saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_keeps_the_participant_on_the_page() {
    let _serial = serial();
    let p = Prepared::new(|_| {}, S1);
    let mut srv = Server::serve(p);
    let base = srv.origin();
    let login = srv.logins[0].clone();
    let token = srv.token.clone();
    let browser = chrome::Browser::launch(true, WINDOW)
        .await
        .expect("browser");
    let c = browser.client.clone();
    let r: Result<()> = async {
        sit_in_browser(&c, &base, &login, &token).await?;
        css(&c, "label.option").await?.click().await?;
        wait_exact(&c, "#status", "tersimpan").await?;
        srv.kill9();
        let second = css_all(&c, "label.option").await?;
        second.get(1).context("option B")?.click().await?;
        css(&c, ".bottombar button.primary").await?.click().await?;
        wait_text(&c, "#offline", OFFLINE).await?;
        ensure!(path(&c).await? == "/soal/1", "still on the question");
        ensure!(text(&c, "#status").await?.contains("server tidak dapat dihubungi"), "why unsaved");
        screenshot(&c, "day-outage").await?;
        srv.restart();
        wait_path(&c, "/soal/2").await?;
        c.goto(&format!("{base}/soal/1")).await?;
        let inputs = css_all(&c, "input[name=choice]").await?;
        ensure!(inputs[1].is_selected().await?, "option B saved after the restart");
        let saved = js(&c, "var x=new XMLHttpRequest();x.open('GET','/api/v1/state',false);x.send();return JSON.parse(x.responseText).answered;").await?;
        ensure!(saved == 1, "one answer on the server: {saved}");
        Ok(())
    }
    .await;
    if let Err(e) = r {
        chrome::dump(&c, "day-outage").await;
        browser.quit().await;
        panic!("outage: {e:#}");
    }
    browser.quit().await;
}

/// A participant finished on one PC sees the result (decimal comma) from another browser
/// after logging in again; a participant collected by the proctor reaches the
/// questionnaire, told who ended the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_end() {
    let _serial = serial();
    let srv = Server::demo();
    let pw = demo_admin_password(&srv);
    let base = srv.origin();
    let admin = Admin::login(&srv, &pw).await;
    // Participant 1 finishes on "another PC" (the API).
    let first = Participant::sit(
        &srv,
        Ipv4Addr::new(127, 0, 0, 2),
        &srv.logins[0],
        &srv.token,
    )
    .await;
    for n in 1..=5 {
        assert_eq!(first.answer(n).await.status, 200);
    }
    let r = first.http.post("/api/v1/finish", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let login1 = srv.logins[0].clone();
    let login2 = srv.logins[1].clone();
    let token = srv.token.clone();
    let admin = &admin;
    run("day-after-end", true, WINDOW, |c| async move {
        c.goto(&format!("{base}/")).await?;
        css(&c, "#participant").await?.send_keys(&login1.0).await?;
        css(&c, "#password").await?.send_keys(&login1.1).await?;
        click_nav(&c, css(&c, "button.primary").await?).await?;
        wait_path(&c, "/hasil").await?;
        let score = text(&c, "#score").await?;
        ensure!(score.contains(','), "decimal comma: {score}");
        let st = js(&c, "var x=new XMLHttpRequest();x.open('GET','/api/v1/state',false);x.send();return [x.status, JSON.parse(x.responseText).status];").await?;
        ensure!(st == json!([200, "finished"]), "state after finish from a second browser: {st}");
        screenshot(&c, "day-result-second-browser").await?;
        click_nav(&c, css(&c, "#to-questionnaire").await?).await?;
        wait_path(&c, "/kuesioner").await?;

        // Participant 2 works in this browser; the proctor collects them.
        c.delete_all_cookies().await?;
        sit_in_browser(&c, &base, &login2, &token).await?;
        let r = admin.act(&[("do", "finish"), ("participant", &login2.0), ("reason", "uji")]).await;
        ensure!(r.status == 303, "collected: {}", r.text());
        click_nav(&c, css(&c, ".bottombar button.primary").await?).await?;
        poll("the result page", Duration::from_secs(15), || async {
            Ok(matches!(path(&c).await?.as_str(), "/hasil" | "/kuesioner").then_some(()))
        })
        .await?;
        if path(&c).await? == "/hasil" {
            ensure!(text(&c, "#ended").await?.contains("diakhiri oleh pengawas"));
            click_nav(&c, css(&c, "#to-questionnaire").await?).await?;
        }
        wait_path(&c, "/kuesioner").await?;
        ensure!(text(&c, "#ended").await?.contains("diakhiri oleh pengawas"), "who ended it");
        screenshot(&c, "day-questionnaire-collected").await?;
        Ok(())
    })
    .await;
}

/// During a pause a save is refused and the page shows the pause at once; the answer
/// stays in the browser's outbox and is sent after the resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_answers_until_resume() {
    let _serial = serial();
    let srv = Server::demo();
    let pw = demo_admin_password(&srv);
    let base = srv.origin();
    let admin = Admin::login(&srv, &pw).await;
    let login = srv.logins[0].clone();
    let token = srv.token.clone();
    let admin = &admin;
    run("day-pause", true, WINDOW, |c| async move {
        sit_in_browser(&c, &base, &login, &token).await?;
        let r = admin.act(&[("do", "pause"), ("reason", "Listrik padam")]).await;
        ensure!(r.status == 303, "paused: {}", r.text());
        // Idle: nobody touches the page, and it shows the pause within the event stream's
        // 2 s (not at the next 15 s heartbeat).
        poll("the pause notice on an idle page", Duration::from_secs(4), || async {
            Ok(js(&c, "return !document.getElementById('paused').hidden;").await?.as_bool().filter(|b| *b))
        })
        .await?;
        css(&c, "label.option").await?.click().await?;
        poll("the pause notice", Duration::from_secs(5), || async {
            Ok(js(&c, "return !document.getElementById('paused').hidden;").await?.as_bool().filter(|b| *b))
        })
        .await?;
        wait_text(&c, "#status", "dihentikan sementara oleh pengawas").await?;
        let outbox = js(&c, "var n=0;for(var i=0;i<localStorage.length;i++){var k=localStorage.key(i);if(k.indexOf('tuk.outbox.')===0){n+=Object.keys(JSON.parse(localStorage.getItem(k))).length;}}return n;").await?;
        ensure!(outbox == 1, "the answer waits in the outbox: {outbox}");
        screenshot(&c, "day-paused").await?;
        let r = admin.act(&[("do", "resume")]).await;
        ensure!(r.status == 303, "resumed: {}", r.text());
        wait_exact(&c, "#status", "tersimpan").await?;
        let st = js(&c, "var x=new XMLHttpRequest();x.open('GET','/api/v1/state',false);x.send();return JSON.parse(x.responseText).answered;").await?;
        ensure!(st == 1, "sent after the resume: {st}");
        Ok(())
    })
    .await;
}

/// An English lab browser without JavaScript: the pages are Indonesian; no page promises
/// keys or automatic saving that need JavaScript; switching the text size keeps the
/// answer just chosen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_browser_without_javascript() {
    let _serial = serial();
    let srv = Server::demo();
    let base = srv.origin();
    let login = srv.logins[0].clone();
    let token = srv.token.clone();
    let browser = chrome::Browser::launch_lang(false, WINDOW, "en-US,en")
        .await
        .expect("browser");
    let c = browser.client.clone();
    let r: Result<()> = async {
        c.goto(&format!("{base}/")).await?;
        ensure!(
            text(&c, "h1").await? == "Masuk Peserta",
            "Indonesian login page"
        );
        css(&c, "#participant").await?.send_keys(&login.0).await?;
        css(&c, "#password").await?.send_keys(&login.1).await?;
        click_nav(&c, css(&c, "button.primary").await?).await?;
        wait_path(&c, "/token").await?;
        css(&c, "#token").await?.send_keys(&token).await?;
        click_nav(&c, css(&c, "button.primary").await?).await?;
        wait_path(&c, "/konfirmasi").await?;
        ensure!(text(&c, "h1").await? == "Konfirmasi Data Peserta");
        ensure!(
            !css(&c, "p.js-only").await?.is_displayed().await?,
            "no keyboard keys promised without JavaScript"
        );
        click_nav(&c, css(&c, "form[action=\"/mulai\"] button").await?).await?;
        wait_path(&c, "/soal/1").await?;
        c.goto(&format!("{base}/soal/2")).await?;
        ensure!(
            c.source()
                .await?
                .contains("Jawaban disimpan setiap kali Anda menekan"),
            "says when answers are saved without JavaScript"
        );
        css_all(&c, "label.option").await?[1].click().await?;
        click_nav(
            &c,
            css(&c, "header .prefs button[value=\"font-large\"]").await?,
        )
        .await?;
        wait_path(&c, "/soal/2").await?;
        ensure!(
            css(&c, "body")
                .await?
                .attr("class")
                .await?
                .unwrap_or_default()
                .contains("large"),
            "large text"
        );
        let inputs = css_all(&c, "input[name=choice]").await?;
        ensure!(
            inputs[1].is_selected().await?,
            "the chosen answer was kept (saved)"
        );
        ensure!(
            in_view(&c, ".bottombar button.primary").await?,
            "bar in view"
        );
        screenshot(&c, "day-question-noscript-large").await?;
        Ok(())
    }
    .await;
    if let Err(e) = r {
        chrome::dump(&c, "day-english-noscript").await;
        browser.quit().await;
        panic!("english/no-JS: {e:#}");
    }
    browser.quit().await;
}

/// "Last activity" on the board counts every request of the participant: a save and a page
/// load move it, not only the heartbeat (no browser needed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_activity_counts_saves_and_pages() {
    let _serial = serial();
    let srv = Server::demo();
    let admin = Admin::login(&srv, &demo_admin_password(&srv)).await;
    let p = Participant::sit(
        &srv,
        Ipv4Addr::new(127, 0, 0, 2),
        &srv.logins[0],
        &srv.token,
    )
    .await;
    let seen = || async {
        let b = admin
            .c
            .get(&format!("/admin/sesi/{S1}/board.json"))
            .await
            .json();
        let row = b["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["participant"] == p.number.as_str())
            .cloned()
            .unwrap();
        (
            row["last_seen_ms"].as_i64().unwrap_or(0),
            row["last_seen"].clone(),
        )
    };
    let (t0, _) = seen().await;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(p.answer(1).await.status, 200);
    let (t1, shown) = seen().await;
    assert!(t1 >= t0 + 1_000, "a save counts: {t0} → {t1}");
    assert_eq!(shown.as_str().map(str::len), Some(8), "hh:mm:ss: {shown}");
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(p.http.get("/soal/2").await.status, 200);
    let (t2, _) = seen().await;
    assert!(t2 >= t1 + 1_000, "a page load counts: {t1} → {t2}");
}
