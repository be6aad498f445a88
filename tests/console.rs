//! Integration tests of the proctor and technician console (`/admin`) against the real
//! server (`tuk demo` / `tuk serve` as child processes, see `tests/common`).
//!
//! What is covered: roles (admin, proctor, participant cookie), CSRF, token rotation and its
//! grace, reset login (moving a participant to another PC), adding time, pause/resume with
//! the remaining time kept to the second, force-finish, close, attendance, the printables
//! and their exports, the minutes (*berita acara*), package import from the admin page, and
//! the hash-chained event log recording every proctor action with who did it and why.
//!
//! Every test has its own data folder and server. Participants are driven through the JSON
//! API from distinct loopback addresses (127.0.0.2, …) so the board shows one PC each.

mod common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{Client, Prepared, Response, Server, edit_file, repo, tuk};

const S1: &str = "demo-kk-a-2026/S1";
const S2: &str = "demo-kk-a-2026/S2";
/// What every refused console form shows (Indonesian, the default language).
const CSRF_MESSAGE: &str = "Formulir kedaluwarsa";

// ---------------------------------------------------------------------------------------
// The demo roster (from the committed source)
// ---------------------------------------------------------------------------------------

/// `(number, name)` of every participant of a session of the demo (`S1`, `S2`), in roster
/// order.
fn roster(session_id: &str) -> Vec<(String, String)> {
    let mut r = csv::Reader::from_path(repo().join("exam-packages/demo/roster.csv"))
        .expect("read the demo roster");
    let head = r.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let (num, nam, ses) = (col("participant"), col("name"), col("session"));
    r.records()
        .map(|x| x.unwrap())
        .filter(|x| &x[ses] == session_id)
        .map(|x| (x[num].to_string(), x[nam].to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// HTML bits
// ---------------------------------------------------------------------------------------

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The CSRF token of the first form on a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no csrf field in the page:\n{html}"));
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    unescape(&rest[..rest.find('"').unwrap()])
}

/// The cells (text, unescaped) of every row of the first `<tbody>` of a page.
fn table_rows(html: &str) -> Vec<Vec<String>> {
    let Some(start) = html.find("<tbody>") else {
        return Vec::new();
    };
    let body = &html[start
        ..html[start..]
            .find("</tbody>")
            .map_or(html.len(), |e| start + e)];
    body.split("<tr")
        .skip(1)
        .map(|row| {
            let mut cells = Vec::new();
            let mut rest = row;
            while let Some(i) = rest.find("<td") {
                let open_end = i + rest[i..].find('>').unwrap() + 1;
                let close = open_end + rest[open_end..].find("</td>").unwrap();
                cells.push(unescape(&rest[open_end..close]));
                rest = &rest[close + 5..];
            }
            cells
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------

/// The demo's admin password, as `tuk demo` printed it.
fn admin_password(srv: &Server) -> String {
    srv.stdout()
        .lines()
        .find_map(|l| l.strip_prefix("admin: admin "))
        .expect("tuk demo prints `admin: admin PASSWORD`")
        .trim()
        .to_string()
}

/// A logged-in staff member's browser.
#[derive(Clone)]
struct Staff {
    c: Client,
    name: String,
    csrf: String,
}

impl Staff {
    async fn login(srv: &Server, name: &str, password: &str) -> Staff {
        Self::login_from(srv.client(), name, password).await
    }

    async fn login_from(c: Client, name: &str, password: &str) -> Staff {
        let r = c
            .post_form("/admin/masuk", &[("user", name), ("password", password)])
            .await;
        assert_eq!(r.status, 303, "staff login of {name}: {}", r.text());
        assert_eq!(r.location().as_deref(), Some("/admin"));
        let sc = r.set_cookies().join("\n");
        assert!(
            sc.contains("tuk_staff=") && sc.contains("HttpOnly") && sc.contains("SameSite=Strict"),
            "staff cookie: {sc}"
        );
        let home = c.get("/admin").await;
        assert_eq!(home.status, 200);
        let html = home.text();
        assert!(html.contains(name), "the console greets {name}");
        Staff {
            csrf: csrf_of(&html),
            c,
            name: name.to_string(),
        }
    }

    fn actor(&self) -> String {
        format!("staff:{}", self.name)
    }

    async fn get(&self, path: &str) -> Response {
        self.c.get(path).await
    }

    /// A form post with this login's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut f = fields.to_vec();
        f.push(("csrf", &self.csrf));
        self.c.post_form(path, &f).await
    }

    /// An action as its confirmation page posts it (`confirmed=1`; issue 13: without it a
    /// consequential action only shows what it would do).
    async fn act(&self, skey: &str, fields: &[(&str, &str)]) -> Response {
        let mut f = fields.to_vec();
        f.push(("confirmed", "1"));
        self.post(&format!("/admin/sesi/{skey}/aksi"), &f).await
    }

    /// An action that must succeed: 303 back to the board.
    #[track_caller]
    fn ok(&self, skey: &str, r: &Response) {
        assert_eq!(
            (r.status, r.location()),
            (303, Some(format!("/admin/sesi/{skey}"))),
            "{} expected the action to succeed: {}",
            self.name,
            r.text()
        );
    }

    async fn act_ok(&self, skey: &str, fields: &[(&str, &str)]) {
        let r = self.act(skey, fields).await;
        self.ok(skey, &r);
    }

    /// An action that must be refused with this status; returns the error page.
    async fn act_refused(&self, skey: &str, fields: &[(&str, &str)], status: u16) -> String {
        let r = self.act(skey, fields).await;
        assert_eq!(
            r.status,
            status,
            "{} {fields:?} on {skey}: {}",
            self.name,
            r.text()
        );
        let page = r.text();
        assert!(
            page.contains("role=\"alert\""),
            "refusal page with a message: {page}"
        );
        page
    }

    async fn board(&self, skey: &str) -> Value {
        let r = self.get(&format!("/admin/sesi/{skey}/board.json")).await;
        assert_eq!(r.status, 200, "board.json of {skey}: {}", r.text());
        r.json()
    }

    async fn row(&self, skey: &str, number: &str) -> Value {
        let b = self.board(skey).await;
        b["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["participant"] == number)
            .cloned()
            .unwrap_or_else(|| panic!("{number} is not on the board of {skey}: {b}"))
    }

    /// The events of a chain, oldest first, read from the log viewer after asking it to
    /// verify the chain (which must be intact).
    async fn events(&self, chain: &str) -> Vec<Ev> {
        let r = self
            .get(&format!("/admin/log?chain={chain}&verify=1"))
            .await;
        assert_eq!(r.status, 200, "log of {chain}: {}", r.text());
        let html = r.text();
        assert!(
            html.contains("Rantai utuh"),
            "the chain {chain} verifies: {html}"
        );
        // The page speaks Indonesian; the machine names are in its CSV download.
        let r = self
            .get(&format!("/admin/log?chain={chain}&format=csv"))
            .await;
        assert_eq!(r.status, 200, "log csv of {chain}");
        let mut rd = csv::Reader::from_reader(r.body.as_ref());
        let mut evs: Vec<Ev> = rd
            .records()
            .map(|c| {
                let c = c.unwrap();
                Ev {
                    seq: c[0].parse().unwrap(),
                    kind: c[2].to_string(),
                    actor: c[4].to_string(),
                    data: serde_json::from_str(&c[5])
                        .unwrap_or_else(|e| panic!("log data {:?}: {e}", &c[5])),
                }
            })
            .collect();
        evs.sort_by_key(|e| e.seq);
        // The page shows the same events, newest first, in words: no machine names.
        let rows = table_rows(&html);
        assert_eq!(rows.len(), evs.len().min(500), "{chain}: page rows");
        for (row, e) in rows.iter().zip(evs.iter().rev()) {
            assert_eq!(row[0], e.seq.to_string());
            assert!(!row[2].contains('_'), "kind in words: {row:?}");
            assert!(!row[3].starts_with("staff:"), "actor in words: {row:?}");
        }
        evs
    }
}

#[derive(Debug, Clone)]
struct Ev {
    seq: u64,
    kind: String,
    actor: String,
    data: Value,
}

/// The one event of `kind` by `actor` for which `pick` holds.
#[track_caller]
fn the_event<'a>(evs: &'a [Ev], kind: &str, actor: &str, pick: impl Fn(&Value) -> bool) -> &'a Ev {
    let found: Vec<&Ev> = evs
        .iter()
        .filter(|e| e.kind == kind && e.actor == actor && pick(&e.data))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one {kind} event by {actor}; the chain has:\n{}",
        evs.iter()
            .map(|e| format!("{} {} {} {}", e.seq, e.kind, e.actor, e.data))
            .collect::<Vec<_>>()
            .join("\n")
    );
    found[0]
}

fn count_kind(evs: &[Ev], kind: &str) -> usize {
    evs.iter().filter(|e| e.kind == kind).count()
}

/// Creates a proctor account from the admin's page; returns its password.
async fn add_proctor(admin: &Staff, name: &str) -> String {
    let pw = format!("sandi-{name}-2026");
    let r = admin
        .post(
            "/admin/pengguna",
            &[("name", name), ("role", "proctor"), ("password", &pw)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains(&format!("Akun {name} ditambahkan.")),
        "{}",
        r.text()
    );
    pw
}

/// Demo server, its admin, and proctor `budi` assigned to S1.
async fn demo_with_proctor() -> (Server, Staff, Staff) {
    let srv = Server::demo();
    let admin = Staff::login(&srv, "admin", &admin_password(&srv)).await;
    let pw = add_proctor(&admin, "budi").await;
    admin
        .act_ok(S1, &[("do", "assign"), ("proctor", "budi")])
        .await;
    let budi = Staff::login(&srv, "budi", &pw).await;
    (srv, admin, budi)
}

// ---------------------------------------------------------------------------------------
// Participants (JSON API)
// ---------------------------------------------------------------------------------------

fn pc(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

async fn p_login(c: &Client, number: &str, password: &str) -> Response {
    c.post(
        "/api/v1/login",
        &json!({"participant": number, "password": password}),
    )
    .await
}

async fn p_start(c: &Client, token: &str) -> Response {
    c.post("/api/v1/start", &json!({"token": token})).await
}

/// A participant at the PC 127.0.0.`last`: logged in and started.
async fn sit(srv: &Server, last: u8, login: &(String, String), token: &str) -> Client {
    let c = srv.client_from(pc(last));
    p_login(&c, &login.0, &login.1).await.assert_ok();
    p_start(&c, token).await.assert_ok();
    c
}

async fn item(c: &Client, n: usize) -> Value {
    c.get(&format!("/api/v1/items/{n}")).await.assert_ok()
}

/// Answers item `n` with its `opt`-th option (as displayed; counted round the item's options,
/// so a true/false item takes any `opt` too).
async fn answer(c: &Client, n: usize, opt: usize, doubtful: bool, seq: u64) -> Response {
    let it = item(c, n).await;
    let options = it["options"].as_array().map_or(1, |o| o.len().max(1));
    let choice = it["options"][opt % options]["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.put(
        &format!("/api/v1/answers/{}", it["id"].as_str().unwrap()),
        &json!({"choice": [choice], "doubtful": doubtful, "seq": seq}),
    )
    .await
}

async fn state(c: &Client) -> Value {
    c.get("/api/v1/state").await.assert_ok()
}

async fn heartbeat(c: &Client, unsaved: u32) -> Response {
    c.post("/api/v1/heartbeat", &json!({"unsaved": unsaved}))
        .await
}

fn deadline_ms(st: &Value) -> i64 {
    let s = st["deadline"].as_str().expect("deadline");
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("deadline {s:?}: {e}"));
    t.unix_timestamp() * 1000
}

fn remaining(v: &Value) -> i64 {
    v["remaining_ms"].as_i64().expect("remaining_ms")
}

/// A POST of the console's multipart upload form.
async fn upload(c: &Client, csrf: Option<&str>, bytes: &[u8]) -> Response {
    let boundary = "----tukTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"package\"; filename=\"paket.tukpkg\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let path = match csrf {
        Some(t) => format!("/admin/impor?csrf={t}"),
        None => "/admin/impor".to_string(),
    };
    c.request(
        "POST",
        &path,
        &[(
            "content-type",
            &format!("multipart/form-data; boundary={boundary}"),
        )],
        body,
    )
    .await
}

// ---------------------------------------------------------------------------------------
// 1. Roles
// ---------------------------------------------------------------------------------------

/// Pages of one session that any staff member allowed on it may see.
fn session_pages(skey: &str) -> Vec<String> {
    [
        "",
        "/board.json",
        "/token",
        "/hadir",
        "/hadir?format=csv",
        "/hadir?format=xlsx",
        "/nilai",
        "/nilai?format=csv",
        "/berita-acara",
        "/berita-acara?format=csv",
    ]
    .iter()
    .map(|p| format!("/admin/sesi/{skey}{p}"))
    .chain([format!("/admin/log?chain={skey}")])
    .collect()
}

/// Pages only an admin may see.
fn admin_pages() -> Vec<String> {
    vec![
        "/admin/impor".into(),
        "/admin/pengguna".into(),
        "/admin/kesehatan".into(),
        "/admin/log".into(),
        "/admin/log?chain=_tuk".into(),
        "/admin/log?chain=_tuk&verify=1".into(),
        format!("/admin/sesi/{S1}/kartu"),
        format!("/admin/sesi/{S1}/kartu?format=csv"),
        format!("/admin/sesi/{S1}/kartu?format=xlsx"),
        format!("/admin/sesi/{S2}/kartu"),
    ]
}

#[tokio::test]
async fn roles_proctor_admin_and_participant_cookie() {
    let srv = Server::demo();
    let admin = Staff::login(&srv, "admin", &admin_password(&srv)).await;
    let budi_pw = add_proctor(&admin, "budi").await;
    let ani_pw = add_proctor(&admin, "ani").await;
    let budi = Staff::login(&srv, "budi", &budi_pw).await;
    let ani = Staff::login(&srv, "ani", &ani_pw).await;

    // The admin reaches everything.
    for p in admin_pages()
        .into_iter()
        .chain(session_pages(S1))
        .chain(session_pages(S2))
    {
        assert_eq!(admin.get(&p).await.status, 200, "admin GET {p}");
    }
    let home = admin.get("/admin").await.text();
    for link in [
        "/admin/impor",
        "/admin/pengguna",
        "/admin/kesehatan",
        "/admin/log",
    ] {
        assert!(
            home.contains(&format!("href=\"{link}\"")),
            "admin menu has {link}"
        );
    }

    // A proctor assigned to nothing sees no session and reaches neither sessions nor
    // admin pages.
    let home = budi.get("/admin").await.text();
    assert!(!home.contains(&format!("/admin/sesi/{S1}")), "{home}");
    assert!(
        !home.contains("href=\"/admin/impor\""),
        "no admin menu: {home}"
    );
    for p in admin_pages()
        .into_iter()
        .chain(session_pages(S1))
        .chain(session_pages(S2))
    {
        let r = budi.get(&p).await;
        assert_eq!(r.status, 403, "proctor GET {p}: {}", r.text());
        assert!(
            !r.text().contains("Kata sandi</th>"),
            "no card leaks to {p}"
        );
    }
    // Nor receive the live board (server-sent events).
    for skey in [S1, S2] {
        let r = budi.get(&format!("/admin/sesi/{skey}/events")).await;
        assert_eq!(r.status, 403, "proctor events of {skey}: {}", r.text());
    }
    // Nor can it change anything there.
    budi.act_refused(S1, &[("do", "pause"), ("reason", "coba")], 403)
        .await;
    budi.act_refused(S1, &[("do", "close_force")], 403).await;
    budi.act_refused(S1, &[("do", "assign"), ("proctor", "budi")], 403)
        .await;
    let r = budi
        .post(
            &format!("/admin/sesi/{S1}/berita-acara"),
            &[("notes", "palsu"), ("confirm", "1")],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = budi
        .post(
            "/admin/pengguna",
            &[
                ("name", "jahat"),
                ("role", "admin"),
                ("password", "12345678-jahat"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "a proctor cannot add accounts");
    let pkg = std::fs::read(repo().join("exam-packages/demo.tukpkg")).unwrap();
    assert_eq!(upload(&budi.c, Some(&budi.csrf), &pkg).await.status, 403);
    let r = budi
        .post("/admin/impor/konfirmasi", &[("hash", &"0".repeat(64))])
        .await;
    assert_eq!(r.status, 403);
    assert!(
        !admin.get("/admin/pengguna").await.text().contains("jahat"),
        "no account was added"
    );
    let b = admin.board(S1).await;
    assert_eq!(b["status"], "dibuka", "the session is unchanged");

    // The admin assigns budi to S1: budi sees S1 (and only S1) and may act on it.
    admin
        .act_ok(S1, &[("do", "assign"), ("proctor", "budi")])
        .await;
    let home = budi.get("/admin").await.text();
    assert!(
        home.contains(&format!("href=\"/admin/sesi/{S1}\"")),
        "{home}"
    );
    assert!(!home.contains(&format!("/admin/sesi/{S2}")), "{home}");
    for p in session_pages(S1) {
        assert_eq!(budi.get(&p).await.status, 200, "assigned proctor GET {p}");
    }
    for p in admin_pages().into_iter().chain(session_pages(S2)) {
        assert_eq!(budi.get(&p).await.status, 403, "assigned proctor GET {p}");
    }
    // The board offers no login cards to a proctor.
    let page = budi.get(&format!("/admin/sesi/{S1}")).await.text();
    assert!(!page.contains("/kartu"), "no card link for a proctor");
    budi.act_ok(S1, &[("do", "pause"), ("reason", "uji coba")])
        .await;
    budi.act_ok(S1, &[("do", "resume")]).await;
    // Only an admin assigns proctors.
    budi.act_refused(S1, &[("do", "assign"), ("proctor", "ani")], 422)
        .await;
    // The other proctor still reaches nothing.
    for p in session_pages(S1) {
        assert_eq!(ani.get(&p).await.status, 403, "unassigned proctor GET {p}");
    }
    ani.act_refused(S1, &[("do", "pause"), ("reason", "x")], 403)
        .await;
    // Assigning an unknown or admin account is refused.
    admin
        .act_refused(S1, &[("do", "assign"), ("proctor", "siapa")], 422)
        .await;
    admin
        .act_refused(S1, &[("do", "assign"), ("proctor", "admin")], 422)
        .await;
    // Assign and unassign ani: access follows.
    admin
        .act_ok(S1, &[("do", "assign"), ("proctor", "ani")])
        .await;
    assert_eq!(ani.get(&format!("/admin/sesi/{S1}")).await.status, 200);
    let page = admin.get(&format!("/admin/sesi/{S1}")).await.text();
    assert!(page.contains("Pengawas: budi, ani"), "both proctors listed");
    admin
        .act_ok(S1, &[("do", "unassign"), ("proctor", "ani")])
        .await;
    assert_eq!(ani.get(&format!("/admin/sesi/{S1}")).await.status, 403);
    assert_eq!(budi.get(&format!("/admin/sesi/{S1}")).await.status, 200);

    let evs = admin.events(S1).await;
    the_event(&evs, "proctor_assign", "staff:admin", |d| {
        d["proctor"] == "budi" && d["assigned"] == true
    });
    the_event(&evs, "proctor_assign", "staff:admin", |d| {
        d["proctor"] == "ani" && d["assigned"] == false
    });
    the_event(&evs, "pause", "staff:budi", |d| d["reason"] == "uji coba");
    // Refused actions left no trace.
    assert_eq!(count_kind(&evs, "pause"), 1);
    assert_eq!(count_kind(&evs, "proctor_assign"), 3);

    // A participant's cookie reaches no console page: every page sends it to the login.
    let p = sit(&srv, 2, &srv.logins[0], &srv.token).await;
    let p_cookie = p.cookie("tuk").expect("participant cookie");
    let forged = srv.client();
    forged.set_cookie("tuk_staff", &p_cookie);
    for who in [&p, &forged] {
        let home = who.get("/admin").await;
        assert_eq!(home.status, 200);
        let html = home.text();
        assert!(
            html.contains("action=\"/admin/masuk\""),
            "the login form: {html}"
        );
        assert!(!html.contains("/admin/sesi/"), "no session list: {html}");
        for path in admin_pages().into_iter().chain(session_pages(S1)) {
            let r = who.get(&path).await;
            assert_eq!(
                (r.status, r.location().as_deref()),
                (303, Some("/admin")),
                "participant GET {path}: {}",
                r.text()
            );
        }
        let r = who.get(&format!("/admin/sesi/{S1}/events")).await;
        assert_eq!((r.status, r.location().as_deref()), (303, Some("/admin")));
        let r = who
            .post_form(
                &format!("/admin/sesi/{S1}/aksi"),
                &[("do", "close_force"), ("csrf", "")],
            )
            .await;
        assert_eq!((r.status, r.location().as_deref()), (303, Some("/admin")));
        let r = who
            .post_form(
                "/admin/pengguna",
                &[("name", "x"), ("role", "admin"), ("password", "xxxxxxxxxx")],
            )
            .await;
        assert_eq!(r.status, 303);
    }
    let b = admin.board(S1).await;
    assert_eq!(b["status"], "dibuka");
    assert_eq!(
        b["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["participant"] == srv.logins[0].0.as_str())
            .unwrap()["status"],
        "working"
    );
    // The participant's own API still works.
    answer(&p, 1, 0, false, 1).await.assert_ok();
}

#[tokio::test]
async fn staff_login_logout_and_lockout() {
    let srv = Server::demo();
    let admin = Staff::login(&srv, "admin", &admin_password(&srv)).await;
    let pw = add_proctor(&admin, "cici").await;

    // Wrong passwords and unknown users: 401 and the login form again, no cookie.
    let c = srv.client();
    for (u, p) in [
        ("cici", "salah-sandi"),
        ("tidakada", "apa-saja-123"),
        ("", ""),
    ] {
        let r = c
            .post_form("/admin/masuk", &[("user", u), ("password", p)])
            .await;
        assert_eq!(r.status, 401, "{u}: {}", r.text());
        assert!(r.text().contains("action=\"/admin/masuk\""));
        assert!(c.cookie("tuk_staff").is_none());
    }

    // Log in, keep a copy of the cookie, log out: the copy is dead too.
    let cici = Staff::login(&srv, "cici", &pw).await;
    let copy = cici.c.fork();
    // Logging out needs the CSRF token as well.
    let r = cici.c.post_form("/admin/keluar", &[]).await;
    assert_eq!(r.status, 403);
    assert_eq!(cici.get("/admin").await.status, 200);
    assert!(
        cici.get("/admin").await.text().contains("Sesi ujian"),
        "still in"
    );
    let r = cici.post("/admin/keluar", &[]).await;
    assert_eq!((r.status, r.location().as_deref()), (303, Some("/admin")));
    assert!(cici.c.cookie("tuk_staff").is_none(), "cookie cleared");
    let r = copy.get("/admin").await;
    assert!(
        r.text().contains("action=\"/admin/masuk\""),
        "old cookie is dead"
    );
    let r = copy.get(&format!("/admin/sesi/{S1}/board.json")).await;
    assert_eq!(r.status, 303);

    // Repeated failures lock the account, even for the right password afterwards.
    let c = srv.client();
    for i in 0..8 {
        let r = c
            .post_form(
                "/admin/masuk",
                &[("user", "cici"), ("password", "tebak-tebak")],
            )
            .await;
        assert!(
            [401, 429].contains(&r.status),
            "failure {i}: {} {}",
            r.status,
            r.text()
        );
    }
    let r = c
        .post_form("/admin/masuk", &[("user", "cici"), ("password", &pw)])
        .await;
    assert_eq!(r.status, 429, "locked out: {}", r.text());
    assert!(c.cookie("tuk_staff").is_none());
    // Other accounts are not affected.
    Staff::login(&srv, "admin", &admin_password(&srv)).await;
}

// ---------------------------------------------------------------------------------------
// 2. CSRF
// ---------------------------------------------------------------------------------------

/// What must not change when a forged form is refused.
fn board_essence(b: &Value) -> Value {
    json!({
        "status": b["status"],
        "token": b["token"],
        "rows": b["rows"].as_array().unwrap().iter().map(|r| json!([
            r["participant"], r["status"], r["pc"], r["answered"], r["doubtful"], r["unsaved"]
        ])).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn csrf_missing_or_wrong_token_is_refused_and_changes_nothing() {
    let (srv, admin, budi) = demo_with_proctor().await;
    let (n1, n2) = (srv.logins[0].0.clone(), srv.logins[1].0.clone());
    let p = sit(&srv, 2, &srv.logins[0], &srv.token).await;
    answer(&p, 1, 0, false, 1).await.assert_ok();
    heartbeat(&p, 0).await.assert_ok();
    let before = board_essence(&admin.board(S1).await);
    let deadline = deadline_ms(&state(&p).await);
    let events_before = admin.events(S1).await.len();
    assert_ne!(admin.csrf, budi.csrf, "one CSRF token per login");

    let actions: Vec<Vec<(&str, &str)>> = vec![
        vec![("do", "pause"), ("reason", "palsu")],
        vec![("do", "close_force")],
        vec![("do", "close")],
        vec![("do", "reset"), ("participant", &n1), ("reason", "palsu")],
        vec![
            ("do", "time"),
            ("participant", &n1),
            ("minutes", "30"),
            ("reason", "palsu"),
        ],
        vec![("do", "time_all"), ("minutes", "30"), ("reason", "palsu")],
        vec![("do", "finish"), ("participant", &n1), ("reason", "palsu")],
        vec![("do", "absent"), ("participant", &n2)],
        vec![("do", "unassign"), ("proctor", "budi")],
    ];
    let path = format!("/admin/sesi/{S1}/aksi");
    for who in [&admin, &budi] {
        let other = if who.name == "admin" {
            &budi.csrf
        } else {
            &admin.csrf
        };
        for a in &actions {
            for forged in [None, Some(""), Some("salah"), Some(other.as_str())] {
                let mut f = a.clone();
                if let Some(t) = forged {
                    f.push(("csrf", t));
                }
                let r = who.c.post_form(&path, &f).await;
                assert_eq!(r.status, 403, "{} {f:?}: {}", who.name, r.text());
                assert!(r.text().contains(CSRF_MESSAGE), "{}", r.text());
            }
            // A wrong token in the query does not help either.
            let r = who.c.post_form(&format!("{path}?csrf=salah"), a).await;
            assert_eq!(r.status, 403);
        }
    }
    // The other forms too.
    let r = admin
        .c
        .post_form(
            "/admin/pengguna",
            &[
                ("name", "susup"),
                ("role", "admin"),
                ("password", "12345678-susup"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(!admin.get("/admin/pengguna").await.text().contains("susup"));
    let r = budi
        .c
        .post_form(
            &format!("/admin/sesi/{S1}/berita-acara"),
            &[("notes", "palsu"), ("confirm", "1"), ("csrf", "salah")],
        )
        .await;
    assert_eq!(r.status, 403);
    let minutes = budi
        .get(&format!("/admin/sesi/{S1}/berita-acara"))
        .await
        .text();
    assert!(minutes.contains("<textarea") && !minutes.contains("palsu"));
    let pkg = std::fs::read(repo().join("exam-packages/demo.tukpkg")).unwrap();
    assert_eq!(upload(&admin.c, None, &pkg).await.status, 403);
    assert_eq!(upload(&admin.c, Some("salah"), &pkg).await.status, 403);
    assert_eq!(upload(&admin.c, Some(&budi.csrf), &pkg).await.status, 403);
    let r = admin
        .c
        .post_form("/admin/impor/konfirmasi", &[("hash", &"0".repeat(64))])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(admin.c.post_form("/admin/keluar", &[]).await.status, 403);

    // Nothing changed: the board, the participant's deadline, the log.
    assert_eq!(board_essence(&admin.board(S1).await), before);
    let st = state(&p).await;
    assert_eq!(st["status"], "running");
    assert_eq!(deadline_ms(&st), deadline, "no time was added");
    answer(&p, 2, 0, false, 1).await.assert_ok();
    let evs = admin.events(S1).await;
    assert_eq!(
        evs.len(),
        events_before + 1,
        "only the participant's answer was logged: {:?}",
        &evs[events_before..]
    );
    assert_eq!(evs.last().unwrap().kind, "answer");
    // Both staff are still logged in, and the right token works.
    budi.act_ok(
        S1,
        &[
            ("do", "time"),
            ("participant", &n1),
            ("minutes", "1"),
            ("reason", "uji"),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// 3. Token rotation and grace
// ---------------------------------------------------------------------------------------

const TOKEN_CHARS: &str = "ACDEFHJKLMNPRTUVWXY3479";

fn assert_token_shape(t: &str) {
    assert_eq!(t.len(), 6, "six characters: {t}");
    assert!(
        t.chars().all(|c| TOKEN_CHARS.contains(c)),
        "no look-alike characters (O/0, I/1, …): {t}"
    );
}

/// Rotates the tokens at `at` in the writer; returns how many puts it made.
fn rotate(app: &tuk::app::App, at: i64) -> usize {
    app.writer
        .run_blocking(move |ex| match ex.rotate_tokens(at) {
            Ok(p) => {
                let n = p.len();
                (p, n)
            }
            Err(r) => panic!("rotate_tokens: {r:?}"),
        })
        .unwrap()
}

fn token_of(app: &tuk::app::App, skey: &str) -> tuk::exam::Token {
    app.read().sessions[skey].token.clone().expect("a token")
}

/// Logs a participant in and tries to start with a token, all at the given time.
fn try_start(
    app: &tuk::app::App,
    number: &str,
    cookie: &str,
    token: &str,
    at: i64,
) -> Result<(), tuk::exam::Refused> {
    let (number, cookie, token) = (
        tuk::exam::ParticipantNo::new(number),
        tuk::exam::CookieId::new(cookie),
        token.to_string(),
    );
    app.writer
        .run_blocking(move |ex| {
            let (mut puts, r) = ex.login(&number, &cookie, None, "127.0.0.9", at);
            r.expect("login");
            let (p, s) = ex.start(&cookie, &token, "127.0.0.9", at);
            puts.extend(p);
            (puts, s.map(|_| ()))
        })
        .unwrap()
}

/// Exact times, with the library on the data folder (server stopped): the token rotates
/// exactly when its interval has passed, the previous one is accepted for exactly
/// `TOKEN_GRACE_MS` after the rotation, and only the immediately previous one.
#[test]
fn token_rotation_and_grace_exact_times() {
    let mut srv = Server::demo();
    let logins = srv.logins.clone();
    let printed = srv.token.clone();
    srv.stop();
    let app = tuk::app::App::open(&srv.data).expect("open the data folder");
    assert_eq!(tuk::exam::TOKEN_GRACE_MS, 120_000);

    let t = token_of(&app, S1);
    assert_eq!(t.current, printed);
    assert_token_shape(&t.current);
    assert_eq!(t.rotate_s, 15 * 60, "default interval: 15 minutes");
    assert!(t.previous.is_none());
    let t0 = t.rotated_ms;
    let first = t.current.clone();

    // 1 ms early: nothing happens.
    assert_eq!(rotate(&app, t0 + 15 * 60_000 - 1), 0);
    assert_eq!(token_of(&app, S1).current, first);
    // On time: a new token, the old one kept as previous.
    let t1 = t0 + 15 * 60_000;
    assert!(rotate(&app, t1) > 0);
    let t = token_of(&app, S1);
    let second = t.current.clone();
    assert_token_shape(&second);
    assert_ne!(second, first);
    assert_eq!(t.previous.as_deref(), Some(first.as_str()));
    assert_eq!(t.rotated_ms, t1);
    // Not again until the next interval.
    assert_eq!(rotate(&app, t1 + 15 * 60_000 - 1), 0);

    // The previous token: accepted up to exactly 120 s after the rotation (as typed by a
    // participant: lower case with spaces too), refused 1 ms later.
    let n = |i: usize| logins[i].0.clone();
    try_start(&app, &n(0), "c0", &first, t1 + 1).expect("old token right after rotation");
    try_start(
        &app,
        &n(1),
        "c1",
        &format!("  {}  ", first.to_lowercase()),
        t1 + 60_000,
    )
    .expect("old token typed in lower case within the grace");
    try_start(&app, &n(2), "c2", &first, t1 + 120_000).expect("old token at the end of the grace");
    assert_eq!(
        try_start(&app, &n(3), "c3", &first, t1 + 120_001),
        Err(tuk::exam::Refused::BadToken),
        "old token after the grace"
    );
    try_start(&app, &n(3), "c3b", &second, t1 + 120_001).expect("current token");
    // The current token before it existed (a token from the future) is just the current
    // token: accepted; a random one is not.
    assert_eq!(
        try_start(&app, &n(4), "c4", "ACDEFH", t1 + 5_000).err(),
        if second == "ACDEFH" {
            None
        } else {
            Some(tuk::exam::Refused::BadToken)
        }
    );

    // Second rotation: the first token is gone for good, even "within the grace" of the
    // second rotation; the second is the new previous.
    let t2 = t1 + 15 * 60_000;
    assert!(rotate(&app, t2) > 0);
    let third = token_of(&app, S1).current;
    assert_ne!(third, second);
    assert_eq!(
        try_start(&app, &n(5), "c5", &first, t2 + 1),
        Err(tuk::exam::Refused::BadToken)
    );
    try_start(&app, &n(5), "c5b", &second, t2 + 1).expect("previous token in its grace");
    try_start(&app, &n(6), "c6", &third, t2 + 1).expect("current token");

    // A paused session does not rotate; a closed one has no token.
    app.writer
        .run_blocking(move |ex| {
            match ex.pause(
                &tuk::exam::SessionKey::new(S1),
                "listrik padam",
                "staff:uji",
                t2 + 10,
            ) {
                Ok(p) => (p, ()),
                Err(r) => panic!("{r:?}"),
            }
        })
        .unwrap();
    assert_eq!(rotate(&app, t2 + 10 * 15 * 60_000), 0);
    assert_eq!(token_of(&app, S1).current, third);

    // Rotations are in the session's log, by the system.
    let evs: Vec<tuk::exam::events::Stored> = app
        .store
        .scan_prefix(tuk::store::Table::Events, &format!("{S1}\u{1f}"))
        .unwrap()
        .into_iter()
        .map(|(_, v)| serde_json::from_slice(&v).unwrap())
        .collect();
    let rotations: Vec<i64> = evs
        .iter()
        .filter(|e| e.kind == "token_rotated")
        .map(|e| {
            assert_eq!(e.actor, "system");
            e.at_ms
        })
        .collect();
    assert_eq!(rotations, vec![t1, t2]);
    app.shutdown();
}

/// Real time, through the CLI and the console: `tuk session open --token-minutes 1`
/// rotates the token after a minute; the board and the projector page show the new
/// token; the previous one still admits participants during the grace.
#[tokio::test]
async fn token_rotates_on_schedule_and_previous_token_keeps_working() {
    let p = Prepared::new(|_| {}, S1);
    let d = p.data.display().to_string();
    let opened = Instant::now();
    let out = tuk(&["session", "open", S2, "--data", &d, "--token-minutes", "1"]);
    let old = out
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("token line")
        .trim()
        .to_string();
    assert_token_shape(&old);
    // A proctor account from the command line (server stopped).
    let pwf = p.root.path().join("budi.txt");
    std::fs::write(&pwf, "sandi-budi-2026\n").unwrap();
    tuk(&[
        "user",
        "add",
        "budi",
        "--role",
        "proctor",
        "--data",
        &d,
        "--password-file",
        &pwf.display().to_string(),
    ]);
    let s2: BTreeSet<String> = roster("S2").into_iter().map(|(n, _)| n).collect();
    let logins: Vec<(String, String)> = p
        .logins
        .iter()
        .filter(|(n, _)| s2.contains(n))
        .cloned()
        .collect();
    assert_eq!(logins.len(), 20);
    let s1_token = p.token.clone();
    let mut srv = Server::serve(p);
    let admin = Staff::login(&srv, "admin", "admin-password-for-tests").await;
    admin
        .act_ok(S2, &[("do", "assign"), ("proctor", "budi")])
        .await;
    let budi = Staff::login(&srv, "budi", "sandi-budi-2026").await;

    let b = budi.board(S2).await;
    assert_eq!(b["token"], old.as_str());
    let page = budi.get(&format!("/admin/sesi/{S2}/token")).await.text();
    assert!(page.contains(&old), "projector page shows the token");
    // One participant starts with the first token.
    sit(&srv, 2, &logins[0], &old).await;

    // Wait for the rotation (about a minute after the CLI opened the session).
    let new = loop {
        let t = budi.board(S2).await["token"].as_str().unwrap().to_string();
        if t != old {
            break t;
        }
        assert!(
            opened.elapsed() < Duration::from_secs(85),
            "the token did not rotate within 85 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let seen = opened.elapsed();
    assert!(
        seen >= Duration::from_secs(59),
        "rotated after {seen:?}, not before a minute"
    );
    assert_token_shape(&new);
    let page = budi.get(&format!("/admin/sesi/{S2}/token")).await.text();
    assert!(
        page.contains(&new) && !page.contains(&old),
        "projector shows the new token"
    );
    let board_page = budi.get(&format!("/admin/sesi/{S2}")).await.text();
    assert!(board_page.contains(&new));

    // Within the grace the previous token still admits; the new one too; others not.
    sit(&srv, 3, &logins[1], &old).await;
    sit(&srv, 4, &logins[2], &new).await;
    let c = srv.client_from(pc(5));
    p_login(&c, &logins[3].0, &logins[3].1).await.assert_ok();
    let wrong = if new == "ACDEFH" || old == "ACDEFH" {
        "ACDEFK"
    } else {
        "ACDEFH"
    };
    p_start(&c, wrong).await.assert_refused(403, "bad_token");
    // The S1 token (15-minute interval) has not changed, and does not open S2.
    assert_eq!(admin.board(S1).await["token"], s1_token.as_str());
    p_start(&c, &s1_token)
        .await
        .assert_refused(403, "not_registered");
    // The board shows the three participants working.
    let b = budi.board(S2).await;
    let working = b["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "working")
        .count();
    assert_eq!(working, 3);

    // The log: opened with a 60 s interval, rotated once by the system ~60 s later.
    let evs = budi.events(S2).await;
    let open = the_event(&evs, "session_open", "cli", |d| d["rotate_s"] == 60);
    let rot = the_event(&evs, "token_rotated", "system", |_| true);
    assert!(rot.seq > open.seq);
    srv.stop();
    let store = srv.open_store();
    let at = |seq: u64| -> i64 {
        let key = tuk::exam::events::event_key(S2, seq);
        let v = store.get(tuk::store::Table::Events, &key).unwrap().unwrap();
        serde_json::from_slice::<tuk::exam::events::Stored>(&v)
            .unwrap()
            .at_ms
    };
    let gap = at(rot.seq) - at(open.seq);
    assert!(
        (60_000..61_500).contains(&gap),
        "rotated {gap} ms after opening (interval 60 s, ticker every 0.5 s)"
    );
}

// ---------------------------------------------------------------------------------------
// 4. Reset login: moving a participant to another PC
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reset_login_moves_participant_to_another_pc_with_answers_and_time() {
    let (srv, _admin, budi) = demo_with_proctor().await;
    let (number, password) = srv.logins[3].clone();

    // PC A (127.0.0.2): five answers, the third doubtful; two more waiting in the browser.
    let a = sit(&srv, 2, &srv.logins[3], &srv.token).await;
    for n in 1..=5 {
        answer(&a, n, n % 3, n == 3, 1).await.assert_ok();
    }
    heartbeat(&a, 2).await.assert_ok();
    let row = budi.row(S1, &number).await;
    assert_eq!(
        (
            row["status"].as_str(),
            row["pc"].as_str(),
            row["answered"].as_u64(),
            row["doubtful"].as_u64(),
            row["items"].as_u64(),
            row["unsaved"].as_u64()
        ),
        (
            Some("working"),
            Some("127.0.0.2"),
            Some(5),
            Some(1),
            Some(60),
            Some(2)
        ),
        "{row}"
    );
    assert_eq!(row["silent"], false);

    // Another PC cannot take over on its own.
    let b = srv.client_from(pc(3));
    p_login(&b, &number, &password)
        .await
        .assert_refused(409, "already_active");

    let before = state(&a).await;
    let views_before: Vec<Value> = {
        let mut v = Vec::new();
        for n in 1..=6 {
            v.push(item(&a, n).await);
        }
        v
    };
    let t_before = Instant::now();

    // The reason is required.
    budi.act_refused(
        S1,
        &[("do", "reset"), ("participant", &number), ("reason", " ")],
        422,
    )
    .await;
    // The proctor moves the participant.
    budi.act_ok(
        S1,
        &[
            ("do", "reset"),
            ("participant", &number),
            ("reason", "Komputer mati / hang"),
        ],
    )
    .await;

    // The old browser is out: its next save, heartbeat and state are refused.
    let r = answer_raw(&a, &views_before[5], 0, 1).await;
    assert!(
        matches!(
            (r.status, r.code().as_str()),
            (401, "not_logged_in") | (409, "moved_to_other_pc")
        ),
        "old PC's save after the reset: {} {}",
        r.status,
        r.text()
    );
    assert!([401, 409].contains(&heartbeat(&a, 1).await.status));
    assert!([401, 409].contains(&a.get("/api/v1/state").await.status));
    let row = budi.row(S1, &number).await;
    assert_eq!(row["status"], "working", "the attempt keeps running");
    assert_eq!(row["pc"], "", "no PC until the participant logs in again");

    // PC B (127.0.0.3): logs in, the token again, continues.
    p_login(&b, &number, &password).await.assert_ok();
    let started = p_start(&b, &srv.token).await.assert_ok();
    let after = state(&b).await;
    assert_eq!(after["attempt"], before["attempt"]);
    assert_eq!(after["deadline"], before["deadline"], "same deadline");
    let elapsed = t_before.elapsed().as_millis() as i64;
    let expect = remaining(&before) - elapsed;
    for (what, got) in [("start", remaining(&started)), ("state", remaining(&after))] {
        assert!(
            (got - expect).abs() <= 1_500 && got <= remaining(&before),
            "{what}: remaining {got} ms, expected {expect} (before {} − elapsed {elapsed})",
            remaining(&before)
        );
    }
    for k in ["answered", "doubtful", "items", "grid", "seq", "status"] {
        assert_eq!(after[k], before[k], "{k} survives the move");
    }
    assert_eq!(after["answered"], 5);
    for (n, v) in views_before.iter().enumerate() {
        assert_eq!(&item(&b, n + 1).await, v, "item {} as before", n + 1);
    }
    // And goes on answering from B.
    answer(&b, 6, 1, false, 1).await.assert_ok();
    heartbeat(&b, 0).await.assert_ok();
    let row = budi.row(S1, &number).await;
    assert_eq!(row["pc"], "127.0.0.3");
    assert_eq!(row["answered"], 6);
    assert_eq!(row["unsaved"], 0);
    // The old PC cannot log back in over B now.
    p_login(&a, &number, &password)
        .await
        .assert_refused(409, "already_active");

    let evs = budi.events(S1).await;
    let e = the_event(&evs, "reset_login", "staff:budi", |d| {
        d["participant"] == number.as_str()
    });
    assert_eq!(e.data["reason"], "Komputer mati / hang");
    assert_eq!(e.data["browsers_ended"], 1);
    let resumed = the_event(&evs, "resume", &format!("participant:{number}"), |_| true);
    assert_eq!(resumed.data["ip"], "127.0.0.3");
    assert!(resumed.seq > e.seq);
    // The minutes list the move with its reason.
    let minutes = budi
        .get(&format!("/admin/sesi/{S1}/berita-acara"))
        .await
        .text();
    assert!(minutes.contains("pindah komputer; login diatur ulang oleh budi"));
    assert!(minutes.contains("Komputer mati / hang") && minutes.contains(&number));
}

/// Saves an option of an already fetched item view.
async fn answer_raw(c: &Client, view: &Value, opt: usize, seq: u64) -> Response {
    let choice = view["options"][opt]["id"].as_str().unwrap().to_string();
    c.put(
        &format!("/api/v1/answers/{}", view["id"].as_str().unwrap()),
        &json!({"choice": [choice], "seq": seq}),
    )
    .await
}

/// A proctor of S1 must not be able to log out a participant of another session (or a
/// number that is in no session) through S1's reset form.
#[tokio::test]
async fn reset_login_is_limited_to_the_proctors_own_session() {
    let (srv, admin, budi) = demo_with_proctor().await;
    // The admin opens S2; a participant of S2 works there.
    admin
        .act_ok(S2, &[("do", "open"), ("rotate_minutes", "15")])
        .await;
    let t2 = admin.board(S2).await["token"].as_str().unwrap().to_string();
    let cards = admin
        .get(&format!("/admin/sesi/{S2}/kartu?format=csv"))
        .await;
    let mut r = csv::Reader::from_reader(cards.body.as_ref());
    let rec = r.records().next().unwrap().unwrap();
    let x = (rec[0].to_string(), rec[7].to_string());
    let p = sit(&srv, 5, &x, &t2).await;
    answer(&p, 1, 0, false, 1).await.assert_ok();

    // budi (S1 only) tries to reset x through S1.
    let r = budi
        .act(
            S1,
            &[("do", "reset"), ("participant", &x.0), ("reason", "iseng")],
        )
        .await;
    assert!(
        r.status == 403 || r.status == 422,
        "refused: {} {}",
        r.status,
        r.text()
    );
    // x keeps working.
    answer(&p, 2, 0, false, 1).await.assert_ok();
    // A number that is in no session is refused too, and nothing is logged for either.
    let r = budi
        .act(
            S1,
            &[
                ("do", "reset"),
                ("participant", "9999999999999"),
                ("reason", "iseng"),
            ],
        )
        .await;
    assert_ne!(r.status, 303, "unknown participant: {}", r.text());
    let evs = budi.events(S1).await;
    assert_eq!(count_kind(&evs, "reset_login"), 0);
}

// ---------------------------------------------------------------------------------------
// 5. Adding time
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn add_time_to_one_participant_and_to_all() {
    let (srv, _admin, budi) = demo_with_proctor().await;
    let (n1, n2) = (srv.logins[0].0.clone(), srv.logins[1].0.clone());
    let p1 = sit(&srv, 2, &srv.logins[0], &srv.token).await;
    let p2 = sit(&srv, 3, &srv.logins[1], &srv.token).await;
    let (d1, d2) = (
        deadline_ms(&state(&p1).await),
        deadline_ms(&state(&p2).await),
    );

    // One participant, 7 minutes, with a reason: the deadline moves by exactly 420 s and
    // the board's remaining time grows by 420 000 ms (± 1 s for the time passing).
    let t0 = Instant::now();
    let r0 = remaining(&budi.row(S1, &n1).await);
    budi.act_ok(
        S1,
        &[
            ("do", "time"),
            ("participant", &n1),
            ("minutes", "7"),
            ("reason", "PC mati 7 menit"),
        ],
    )
    .await;
    let r1 = remaining(&budi.row(S1, &n1).await);
    let passed = t0.elapsed().as_millis() as i64;
    let grown = r1 - r0 + passed;
    assert!(
        (grown - 420_000).abs() <= 1_000,
        "board remaining grew by {} ms over {passed} ms (expected 420 000 ± 1 000)",
        r1 - r0
    );
    assert_eq!(deadline_ms(&state(&p1).await) - d1, 420_000);
    assert_eq!(
        deadline_ms(&state(&p2).await),
        d2,
        "the other participant is unchanged"
    );
    let s1 = state(&p1).await;
    assert!(
        remaining(&s1) > 90 * 60_000 + 6 * 60_000,
        "participant sees it: {s1}"
    );

    // Everyone, 5 minutes.
    budi.act_ok(
        S1,
        &[
            ("do", "time_all"),
            ("minutes", "5"),
            ("reason", "jaringan terputus"),
        ],
    )
    .await;
    assert_eq!(deadline_ms(&state(&p1).await) - d1, 420_000 + 300_000);
    assert_eq!(deadline_ms(&state(&p2).await) - d2, 300_000);

    // Refusals change nothing.
    for (fields, status) in [
        (
            vec![
                ("do", "time"),
                ("participant", n1.as_str()),
                ("minutes", "0"),
                ("reason", "x"),
            ],
            422,
        ),
        (
            vec![
                ("do", "time"),
                ("participant", &n1),
                ("minutes", "-5"),
                ("reason", "x"),
            ],
            422,
        ),
        (
            vec![
                ("do", "time"),
                ("participant", &n1),
                ("minutes", "241"),
                ("reason", "x"),
            ],
            422,
        ),
        (
            vec![
                ("do", "time"),
                ("participant", &n1),
                ("minutes", "lima"),
                ("reason", "x"),
            ],
            422,
        ),
        (
            vec![
                ("do", "time"),
                ("participant", &n1),
                ("minutes", "5"),
                ("reason", ""),
            ],
            422,
        ),
        (
            vec![("do", "time"), ("participant", &n1), ("minutes", "5")],
            422,
        ),
        (
            vec![
                ("do", "time_all"),
                ("minutes", "5"),
                ("reason", &"x".repeat(201)),
            ],
            422,
        ),
        // Not started yet.
        (
            vec![
                ("do", "time"),
                ("participant", &srv.logins[5].0),
                ("minutes", "5"),
                ("reason", "x"),
            ],
            409,
        ),
        // In the roster, but of another session.
        (
            vec![
                ("do", "time"),
                ("participant", &roster("S2")[0].0),
                ("minutes", "5"),
                ("reason", "x"),
            ],
            409,
        ),
    ] {
        budi.act_refused(S1, &fields, status).await;
    }
    assert_eq!(deadline_ms(&state(&p1).await) - d1, 720_000);
    assert_eq!(deadline_ms(&state(&p2).await) - d2, 300_000);

    let evs = budi.events(S1).await;
    let one = the_event(&evs, "time_credit", "staff:budi", |d| d["minutes"] == 7);
    assert_eq!(one.data["participants"], json!([n1]));
    assert_eq!(one.data["reason"], "PC mati 7 menit");
    let all = the_event(&evs, "time_credit", "staff:budi", |d| d["minutes"] == 5);
    assert_eq!(all.data["reason"], "jaringan terputus");
    let who: BTreeSet<&str> = all.data["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(who, BTreeSet::from([n1.as_str(), n2.as_str()]));
    assert_eq!(count_kind(&evs, "time_credit"), 2);
    let minutes = budi
        .get(&format!("/admin/sesi/{S1}/berita-acara"))
        .await
        .text();
    assert!(minutes.contains("ditambah") && minutes.contains("PC mati 7 menit"));
}

// ---------------------------------------------------------------------------------------
// 6. Pause and resume
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn pause_and_resume_keep_the_remaining_time_to_the_second() {
    let (srv, _admin, budi) = demo_with_proctor().await;
    let n1 = srv.logins[0].0.clone();
    let p1 = sit(&srv, 2, &srv.logins[0], &srv.token).await;
    answer(&p1, 1, 0, false, 1).await.assert_ok();
    let late = srv.client_from(pc(4));
    p_login(&late, &srv.logins[4].0, &srv.logins[4].1)
        .await
        .assert_ok();
    let reason = "Listrik padam <script>alert(1)</script>";

    let before = state(&p1).await;
    budi.act_ok(S1, &[("do", "pause"), ("reason", reason)])
        .await;
    let paused = state(&p1).await;
    assert_eq!(paused["paused"], true);
    assert!(
        (remaining(&before) - remaining(&paused)).abs() <= 1_000,
        "frozen at the pause: {} vs {}",
        remaining(&before),
        remaining(&paused)
    );
    let b = budi.board(S1).await;
    assert_eq!(b["status"], "dihentikan sementara");
    let rb1 = remaining(&budi.row(S1, &n1).await);

    // A real pause of 3 s: nothing counts down.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = state(&p1).await;
    assert_eq!(still["paused"], true);
    assert_eq!(
        remaining(&still),
        remaining(&paused),
        "frozen during the pause"
    );
    assert_eq!(
        remaining(&budi.row(S1, &n1).await),
        rb1,
        "frozen on the board"
    );
    let hb = heartbeat(&p1, 0).await.assert_ok();
    assert_eq!(hb["paused"], true);
    assert_eq!(remaining(&hb), remaining(&paused));
    // Nobody starts during a pause; a second pause is refused.
    p_start(&late, &srv.token)
        .await
        .assert_refused(409, "session_paused");
    budi.act_refused(S1, &[("do", "pause"), ("reason", "lagi")], 409)
        .await;
    // The board offers "resume" and no "pause" form.
    let page = budi.get(&format!("/admin/sesi/{S1}")).await.text();
    assert!(page.contains("value=\"resume\"") && !page.contains("value=\"pause\""));

    budi.act_ok(S1, &[("do", "resume")]).await;
    let resumed = state(&p1).await;
    assert_eq!(resumed["paused"], false);
    assert!(
        (remaining(&before) - remaining(&resumed)).abs() <= 1_000,
        "remaining before the pause {} ms, after the resume {} ms",
        remaining(&before),
        remaining(&resumed)
    );
    let shift = deadline_ms(&resumed) - deadline_ms(&before);
    assert!(
        (3_000..6_000).contains(&shift),
        "the deadline moved by the pause: {shift} ms"
    );
    budi.act_refused(S1, &[("do", "resume")], 409).await;
    // The clock runs again.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let later = state(&p1).await;
    let ran = remaining(&resumed) - remaining(&later);
    assert!(
        (1_000..3_500).contains(&ran),
        "the clock runs again: {ran} ms"
    );
    // The late participant may start now.
    p_start(&late, &srv.token).await.assert_ok();
    assert_eq!(budi.board(S1).await["status"], "dibuka");

    let evs = budi.events(S1).await;
    let p = the_event(&evs, "pause", "staff:budi", |_| true);
    assert_eq!(p.data["reason"], reason);
    let r = the_event(&evs, "resume_session", "staff:budi", |_| true);
    let paused_ms = r.data["paused_ms"].as_i64().unwrap();
    assert!(paused_ms >= 3_000, "paused_ms {paused_ms}");
    assert!(
        (shift - paused_ms).abs() <= 1_000,
        "deadline moved by paused_ms"
    );
    // The minutes show the pause and its reason, escaped.
    let minutes = budi
        .get(&format!("/admin/sesi/{S1}/berita-acara"))
        .await
        .text();
    assert!(minutes.contains("tes dihentikan sementara") && minutes.contains("tes dilanjutkan"));
    assert!(
        minutes.contains("Listrik padam &lt;script&gt;"),
        "escaped reason"
    );
    assert!(!minutes.contains("<script>alert(1)"), "no markup injected");
}

// ---------------------------------------------------------------------------------------
// 7. Attendance, force-finish, close; the event log of a whole session
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn attendance_force_finish_close_and_the_event_log() {
    let (mut srv, _admin, budi) = demo_with_proctor().await;
    let n = |i: usize| srv.logins[i].0.clone();
    let p1 = sit(&srv, 2, &srv.logins[0], &srv.token).await;
    let p2 = sit(&srv, 3, &srv.logins[1], &srv.token).await;
    let p3 = sit(&srv, 4, &srv.logins[2], &srv.token).await;
    for p in [&p1, &p2, &p3] {
        answer(p, 1, 0, false, 1).await.assert_ok();
        answer(p, 2, 1, true, 1).await.assert_ok();
    }

    // Attendance.
    budi.act_ok(S1, &[("do", "present"), ("participant", &n(3))])
        .await;
    budi.act_ok(S1, &[("do", "absent"), ("participant", &n(4))])
        .await;
    budi.act_refused(
        S1,
        &[("do", "present"), ("participant", &roster("S2")[0].0)],
        403,
    )
    .await;
    budi.act_refused(S1, &[("do", "absent"), ("participant", "0000")], 403)
        .await;
    let status = |b: &Value, num: &str| {
        b["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["participant"] == num)
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let b = budi.board(S1).await;
    assert_eq!(b["rows"].as_array().unwrap().len(), 20);
    assert_eq!(
        [
            status(&b, &n(0)),
            status(&b, &n(3)),
            status(&b, &n(4)),
            status(&b, &n(5))
        ],
        ["working", "present", "absent", "not_arrived"]
    );
    // A participant who logged in but did not start yet.
    let p6 = srv.client_from(pc(7));
    p_login(&p6, &srv.logins[6].0, &srv.logins[6].1)
        .await
        .assert_ok();
    assert_eq!(status(&budi.board(S1).await, &n(6)), "logged_in");
    // The absent one arrives after all.
    budi.act_ok(S1, &[("do", "present"), ("participant", &n(4))])
        .await;
    assert_eq!(status(&budi.board(S1).await, &n(4)), "present");

    // Force-finish one participant.
    budi.act_ok(
        S1,
        &[
            ("do", "finish"),
            ("participant", &n(0)),
            ("reason", "dihentikan pengawas"),
        ],
    )
    .await;
    assert_eq!(status(&budi.board(S1).await, &n(0)), "finished");
    let st = state(&p1).await;
    assert_eq!(st["status"], "finished");
    answer_refused(&p1, 3, 409, "finished").await;
    budi.act_refused(
        S1,
        &[("do", "finish"), ("participant", &n(0)), ("reason", "lagi")],
        409,
    )
    .await;
    budi.act_refused(
        S1,
        &[("do", "finish"), ("participant", &n(3)), ("reason", "x")],
        409,
    )
    .await;
    budi.act_refused(
        S1,
        &[("do", "finish"), ("participant", &n(1)), ("reason", "")],
        422,
    )
    .await;

    // Close: refused while two are still working.
    let page = budi.act_refused(S1, &[("do", "close")], 409).await;
    assert!(
        page.contains("Masih ada peserta yang mengerjakan"),
        "{page}"
    );
    assert_eq!(budi.board(S1).await["status"], "dibuka");
    answer(&p2, 3, 0, false, 1).await.assert_ok();
    // Force close: both are submitted, the session is closed, the token is gone.
    budi.act_ok(S1, &[("do", "close_force")]).await;
    let b = budi.board(S1).await;
    assert_eq!(b["status"], "ditutup");
    assert!(b["token"].is_null(), "no token after closing: {b}");
    for i in 0..3 {
        assert_eq!(status(&b, &n(i)), "finished", "participant {i}");
    }
    for p in [&p2, &p3] {
        assert_eq!(state(p).await["status"], "finished");
        answer_refused(p, 4, 409, "finished").await;
    }
    p_start(&p6, &srv.token)
        .await
        .assert_refused(403, "bad_token");
    budi.act_refused(S1, &[("do", "close")], 409).await;
    budi.act_refused(S1, &[("do", "pause"), ("reason", "x")], 409)
        .await;
    budi.act_refused(
        S1,
        &[("do", "time_all"), ("minutes", "5"), ("reason", "x")],
        409,
    )
    .await;
    budi.act_refused(
        S1,
        &[("do", "reset"), ("participant", &n(1)), ("reason", "x")],
        409,
    )
    .await;

    // The attendance list: started or marked present = ya; marked absent = tidak.
    let csv_text = budi
        .get(&format!("/admin/sesi/{S1}/hadir?format=csv"))
        .await;
    assert_eq!(
        csv_text.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    let mut r = csv::Reader::from_reader(csv_text.body.as_ref());
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "no",
            "participant",
            "name",
            "institution",
            "district",
            "present",
            "signature"
        ]
    );
    let present: Vec<(String, String)> = r
        .records()
        .map(|x| x.unwrap())
        .map(|x| (x[1].to_string(), x[5].to_string()))
        .collect();
    assert_eq!(present.len(), 20);
    let of = |num: &str| present.iter().find(|(p, _)| p == num).unwrap().1.clone();
    assert_eq!(
        [
            of(&n(0)),
            of(&n(1)),
            of(&n(2)),
            of(&n(3)),
            of(&n(4)),
            of(&n(5))
        ],
        ["ya", "ya", "ya", "ya", "ya", ""]
    );

    // The log viewer says the chain is intact; every action is there with who and why.
    let evs = budi.events(S1).await;
    let actor = budi.actor();
    the_event(&evs, "attendance", &actor, |d| {
        d["participant"] == n(3).as_str() && d["present"] == true
    });
    the_event(&evs, "attendance", &actor, |d| {
        d["participant"] == n(4).as_str() && d["present"] == false
    });
    the_event(&evs, "attendance", &actor, |d| {
        d["participant"] == n(4).as_str() && d["present"] == true
    });
    assert_eq!(count_kind(&evs, "attendance"), 3);
    let ff = the_event(&evs, "force_finish_reason", &actor, |_| true);
    assert_eq!(ff.data["participant"], n(0).as_str());
    assert_eq!(ff.data["reason"], "dihentikan pengawas");
    for i in 0..3 {
        let akey = format!("{S1}/{}", n(i));
        the_event(&evs, "force_finish", &actor, |d| {
            d["attempt"] == akey.as_str()
        });
    }
    let close = the_event(&evs, "session_close", &actor, |_| true);
    assert_eq!(close.data["forced"], true);
    assert!(close.seq > ff.seq);

    // The minutes count what happened.
    let minutes = budi
        .get(&format!("/admin/sesi/{S1}/berita-acara"))
        .await
        .text();
    for fact in [
        "Peserta terdaftar",
        "dikumpulkan oleh budi. Alasan:",
        "sesi ditutup paksa oleh budi",
    ] {
        assert!(minutes.contains(fact), "minutes mention {fact:?}");
    }
    let facts = facts_of(&minutes);
    assert_eq!(
        facts.get("Peserta terdaftar").map(String::as_str),
        Some("20")
    );
    // All three attempts were ended by the proctor (one force-finish, two by the forced
    // close): none finished by themselves.
    assert_eq!(
        facts
            .get("Selesai (dikumpulkan sendiri)")
            .map(String::as_str),
        Some("0")
    );
    assert_eq!(
        facts
            .get("Dikumpulkan otomatis atau oleh pengawas")
            .map(String::as_str),
        Some("3")
    );
    assert_eq!(facts.get("Pengawas").map(String::as_str), Some("budi"));

    // The same, from the store on disk: the chain verifies and the staff events are
    // exactly those above.
    srv.stop();
    let store = srv.open_store();
    let raw = store
        .scan_prefix(tuk::store::Table::Events, &format!("{S1}\u{1f}"))
        .unwrap();
    tuk::exam::events::verify_chain(S1, raw.iter().map(|(_, v)| v.as_slice()))
        .expect("the stored chain verifies");
    let stored: Vec<tuk::exam::events::Stored> = raw
        .iter()
        .map(|(_, v)| serde_json::from_slice(v).unwrap())
        .collect();
    let staff_kinds: Vec<&str> = stored
        .iter()
        .filter(|e| e.actor == actor)
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(
        staff_kinds,
        [
            "attendance",
            "attendance",
            "attendance",
            "force_finish",
            "force_finish_reason",
            "force_finish",
            "force_finish",
            "session_close"
        ]
    );
    assert_eq!(stored.len(), evs.len(), "the viewer shows the whole chain");
}

async fn answer_refused(c: &Client, n: usize, status: u16, code: &str) {
    // The item view is gone once finished: save a made-up option of a made-up item id
    // would be `unknown_item`; use the first option id of the form instead.
    let r = c
        .put(
            &format!("/api/v1/answers/item-{n}"),
            &json!({"choice": [], "seq": 99}),
        )
        .await;
    r.assert_refused(status, code);
}

/// The `th`/`td` pairs of a page's facts table (minutes, verified package).
fn facts_of(html: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let Some(start) = html.find("<table class=\"facts\">") else {
        return out;
    };
    let end = start + html[start..].find("</table>").unwrap();
    for row in html[start..end].split("<tr>").skip(1) {
        let th = row
            .split("<th>")
            .nth(1)
            .and_then(|s| s.split("</th>").next());
        let td = row
            .find("<td")
            .map(|i| &row[i..])
            .and_then(|s| s.find('>').map(|j| &s[j + 1..]))
            .and_then(|s| s.split("</td>").next());
        if let (Some(h), Some(d)) = (th, td) {
            out.insert(unescape(h), unescape(d));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// 8. Printables and the minutes
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn printables_login_cards_attendance_scores_and_minutes() {
    let (srv, admin, budi) = demo_with_proctor().await;
    let s1 = roster("S1");
    assert_eq!(s1.len(), 20);

    // Login cards as CSV: every participant of S1, with a password that logs in.
    let r = admin
        .get(&format!("/admin/sesi/{S1}/kartu?format=csv"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    assert!(
        r.header("content-disposition")
            .is_some_and(|d| d.contains("kartu-peserta-demo-kk-a-2026-S1.csv")),
        "{:?}",
        r.header("content-disposition")
    );
    let mut rd = csv::Reader::from_reader(r.body.as_ref());
    assert_eq!(
        rd.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "participant",
            "name",
            "institution",
            "session",
            "room",
            "date",
            "start",
            "password"
        ]
    );
    let cards: Vec<csv::StringRecord> = rd.records().map(|x| x.unwrap()).collect();
    assert_eq!(
        cards
            .iter()
            .map(|c| (c[0].to_string(), c[1].to_string()))
            .collect::<Vec<_>>(),
        s1,
        "one card per participant of the session, in roster order"
    );
    for c in &cards {
        assert_eq!(
            (&c[3], &c[4], &c[5], &c[6]),
            (S1, "Lab Komputer 1", "2026-11-24", "08:00")
        );
        assert_eq!(c[7].len(), 8, "password {}", &c[7]);
        assert!(
            c[7].chars()
                .all(|ch| "abcdefghjkmnpqrstuvwxyz23456789".contains(ch)),
            "readable password: {}",
            &c[7]
        );
        let printed = srv.logins.iter().find(|(n, _)| n == &c[0]).unwrap();
        assert_eq!(printed.1, c[7], "same password as `tuk demo` printed");
    }
    // Every password logs in (from its own PC address; then logs out again).
    for (i, c) in cards.iter().enumerate() {
        let pcl = srv.client_from(pc(10 + i as u8));
        let v = p_login(&pcl, &c[0], &c[7]).await.assert_ok();
        assert_eq!(v["name"], &c[1]);
        pcl.post("/api/v1/logout", &json!({})).await.assert_ok();
    }
    p_login(&srv.client(), &cards[0][0], &cards[1][7])
        .await
        .assert_refused(401, "bad_login");
    // S2's cards are S2's participants only.
    let r = admin
        .get(&format!("/admin/sesi/{S2}/kartu?format=csv"))
        .await;
    let mut rd = csv::Reader::from_reader(r.body.as_ref());
    let s2: Vec<String> = rd.records().map(|x| x.unwrap()[0].to_string()).collect();
    assert_eq!(
        s2,
        roster("S2").into_iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    // The XLSX is a zip (PK); the HTML page shows every card.
    let x = admin
        .get(&format!("/admin/sesi/{S1}/kartu?format=xlsx"))
        .await;
    assert_eq!(x.status, 200);
    assert!(x.body.starts_with(b"PK\x03\x04"), "xlsx is a zip");
    assert_eq!(
        x.header("content-type").as_deref(),
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    let html = admin.get(&format!("/admin/sesi/{S1}/kartu")).await.text();
    assert_eq!(html.matches("KARTU PESERTA TES AKHIR").count(), 20);
    for c in &cards {
        assert!(html.contains(&c[0]) && html.contains(&c[7]));
    }

    // Attendance and score recap: HTML, CSV, XLSX for the proctor.
    let p = sit(&srv, 2, &srv.logins[0], &srv.token).await;
    answer(&p, 1, 0, false, 1).await.assert_ok();
    p.post("/api/v1/finish", &json!({})).await.assert_ok();
    for sheet in ["hadir", "nilai"] {
        let html = budi.get(&format!("/admin/sesi/{S1}/{sheet}")).await;
        assert_eq!(html.status, 200, "{sheet}");
        assert!(html.text().contains("Lab Komputer 1"));
        let x = budi
            .get(&format!("/admin/sesi/{S1}/{sheet}?format=xlsx"))
            .await;
        assert!(x.body.starts_with(b"PK"), "{sheet} xlsx");
    }
    let hadir = budi.get(&format!("/admin/sesi/{S1}/hadir")).await.text();
    assert!(hadir.contains("DAFTAR HADIR") && hadir.contains("Tanda tangan"));
    let nilai = budi
        .get(&format!("/admin/sesi/{S1}/nilai?format=csv"))
        .await;
    let mut rd = csv::Reader::from_reader(nilai.body.as_ref());
    let rows: Vec<csv::StringRecord> = rd.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 20);
    let mine = rows.iter().find(|r| r[0] == srv.logins[0].0).unwrap();
    assert_eq!(&mine[2], "selesai");
    assert!(mine[3].parse::<f64>().is_ok(), "a score: {mine:?}");
    assert!(["lulus", "belum lulus"].contains(&&mine[5]));

    // The minutes: generated facts and incidents, then the proctor's notes.
    let p2 = sit(&srv, 3, &srv.logins[1], &srv.token).await;
    answer(&p2, 1, 0, false, 1).await.assert_ok();
    budi.act_ok(
        S1,
        &[
            ("do", "time"),
            ("participant", &srv.logins[1].0),
            ("minutes", "7"),
            ("reason", "PC mati"),
        ],
    )
    .await;
    let path = format!("/admin/sesi/{S1}/berita-acara");
    let page = budi.get(&path).await.text();
    assert!(page.contains("BERITA ACARA PELAKSANAAN TES AKHIR") && page.contains("Lab Komputer 1"));
    assert!(page.contains("ditambah 7 menit oleh budi") && page.contains("PC mati"));
    let csv_m = budi.get(&format!("{path}?format=csv")).await;
    let mut rd = csv::Reader::from_reader(csv_m.body.as_ref());
    let inc: Vec<csv::StringRecord> = rd.records().map(|x| x.unwrap()).collect();
    assert!(
        inc.iter()
            .any(|r| &r[1] == "Penambahan waktu" && &r[4] == "budi" && r[5].contains("PC mati")),
        "{inc:?}"
    );
    assert!(
        budi.get(&format!("{path}?format=xlsx"))
            .await
            .body
            .starts_with(b"PK")
    );

    // Save a draft, edit it, confirm: then it is read-only.
    let r = budi
        .post(&path, &[("notes", "Draf catatan."), ("confirm", "0")])
        .await;
    assert_eq!((r.status, r.location()), (303, Some(path.clone())));
    let page = budi.get(&path).await.text();
    assert!(page.contains("<textarea") && page.contains("Draf catatan."));
    // The minutes are confirmed once the session is closed.
    budi.act_ok(S1, &[("do", "close_force")]).await;
    let notes = "Ujian berjalan lancar. Satu PC mati pukul 08.40, peserta dipindah.";
    let r = budi
        .post(&path, &[("notes", notes), ("confirm", "1")])
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let page = budi.get(&path).await.text();
    assert!(page.contains(notes), "confirmed notes shown");
    assert!(page.contains("Dikonfirmasi oleh budi"), "who confirmed");
    assert!(!page.contains("<textarea"), "no more editing");
    for confirm in ["0", "1"] {
        let r = budi
            .post(&path, &[("notes", "diubah"), ("confirm", confirm)])
            .await;
        assert_eq!(
            r.status,
            409,
            "confirmed minutes are read-only: {}",
            r.text()
        );
        assert!(r.text().contains("sudah dikonfirmasi"));
    }
    let r = admin
        .post(&path, &[("notes", "diubah admin"), ("confirm", "1")])
        .await;
    assert_eq!(r.status, 409, "even for the admin");
    let page = admin.get(&path).await.text();
    assert!(page.contains(notes) && !page.contains("diubah"));
    let evs = budi.events(S1).await;
    the_event(&evs, "minutes_saved", "staff:budi", |d| {
        d["notes"] == "Draf catatan."
    });
    the_event(&evs, "minutes_confirmed", "staff:budi", |d| {
        d["notes"] == notes
    });
}

// ---------------------------------------------------------------------------------------
// 9. Admin pages: import, accounts, health
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn admin_imports_a_package_after_seeing_its_verified_header() {
    let p = Prepared::new(|_| {}, S1);
    // A second package from the same UPT key for this TUK, with another id.
    edit_file(
        &p.src.join("package.toml"),
        "id = \"demo-kk-a-2026\"",
        "id = \"demo-kk-b-2026\"",
    );
    let keys = p.root.path().join("keys");
    let file = p.root.path().join("kkb.tukpkg");
    tuk(&[
        "package",
        "build",
        &p.src.display().to_string(),
        "--sign",
        &keys.join("upt-test.key").display().to_string(),
        "--to",
        &keys.join("tuk-test.pub").display().to_string(),
        "-o",
        &file.display().to_string(),
    ]);
    let bytes = std::fs::read(&file).unwrap();
    let srv = Server::serve(p);
    let admin = Staff::login(&srv, "admin", "admin-password-for-tests").await;

    let page = admin.get("/admin/impor").await.text();
    assert!(page.contains(&format!("action=\"/admin/impor?csrf={}\"", admin.csrf)));
    assert!(page.contains("enctype=\"multipart/form-data\""));

    // A damaged file is refused with a reason; nothing is pending.
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    let r = upload(&admin.c, Some(&admin.csrf), &bad).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Paket DITOLAK"), "{}", r.text());
    assert!(!r.text().contains("/admin/impor/konfirmasi"));

    // The real file: the verified header and counts, not imported yet.
    let r = upload(&admin.c, Some(&admin.csrf), &bytes).await;
    let page = r.text();
    assert_eq!(r.status, 200, "{page}");
    assert!(page.contains("Paket terverifikasi"), "{page}");
    let facts = facts_of(&page);
    assert_eq!(facts["Paket"], "demo-kk-b-2026 versi 1");
    assert_eq!(
        facts["UPT"],
        "PPPPTK Demo (Balai Besar Guru Penggerak Contoh)"
    );
    assert_eq!(facts["Tes"], "1");
    assert_eq!(facts["Peserta"], "40");
    assert_eq!(facts["Sesi"], "2");
    let hash = facts["blake3 berkas"].clone();
    assert_eq!(hash, blake3::hash(&bytes).to_hex().to_string());
    let home = admin.get("/admin").await.text();
    assert!(
        !home.contains("demo-kk-b-2026"),
        "not imported before confirming"
    );

    // Confirming with a made-up hash does nothing.
    let r = admin
        .post("/admin/impor/konfirmasi", &[("hash", &"ab".repeat(32))])
        .await;
    assert_eq!(r.status, 422);
    let r = admin
        .post("/admin/impor/konfirmasi", &[("hash", "../../tuk")])
        .await;
    assert_eq!(r.status, 422);
    // Confirm the one looked at.
    let r = admin
        .post("/admin/impor/konfirmasi", &[("hash", &hash)])
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains(
            "Paket demo-kk-b-2026 versi 1 diimpor: 2 sesi, 40 peserta, 0 kata sandi baru."
        ),
        "{}",
        r.text()
    );
    let home = admin.get("/admin").await.text();
    assert!(home.contains("href=\"/admin/sesi/demo-kk-b-2026/S1\""));
    let b = admin.board("demo-kk-b-2026/S1").await;
    assert_eq!(b["status"], "terjadwal");
    assert_eq!(b["rows"].as_array().unwrap().len(), 20);
    // Again: already imported.
    let r = upload(&admin.c, Some(&admin.csrf), &bytes).await;
    let hash2 = facts_of(&r.text())["blake3 berkas"].clone();
    let r = admin
        .post("/admin/impor/konfirmasi", &[("hash", &hash2)])
        .await;
    assert!(r.text().contains("sudah pernah diimpor"), "{}", r.text());

    // The TUK chain records the import by the admin and verifies.
    let evs = admin.events("_tuk").await;
    the_event(&evs, "package_import", "staff:admin", |d| {
        d["package"] == "demo-kk-b-2026"
    });
    // Health and accounts.
    let h = admin.get("/admin/kesehatan").await;
    assert_eq!(h.status, 200);
    assert!(h.text().contains("Ukuran basis data"));
    assert!(
        h.text().contains("Ruang disk kosong") && h.text().contains(" MiB"),
        "free disk space shown"
    );
    let r = admin
        .post(
            "/admin/pengguna",
            &[
                ("name", "pendek"),
                ("role", "proctor"),
                ("password", "1234567"),
            ],
        )
        .await;
    assert!(r.text().contains("minimal 8"), "short password refused");
    add_proctor(&admin, "dewi").await;
    let r = admin
        .post(
            "/admin/pengguna",
            &[
                ("name", "dewi"),
                ("role", "proctor"),
                ("password", "sandi-lain-123"),
            ],
        )
        .await;
    assert!(r.text().contains("sudah ada"), "duplicate refused");
    let users = admin.get("/admin/pengguna").await.text();
    assert!(users.contains("dewi") && !users.contains("pendek"));
    the_event(
        &admin.events("_tuk").await,
        "user_add",
        "staff:admin",
        |d| d["user"] == "dewi",
    );
}

/// Confirmed minutes are a signed record: what they say must not change afterwards. Today
/// the proctor can confirm while the session is still running, and the incidents table
/// (generated live from the log) keeps growing after the confirmation.
#[tokio::test]
async fn confirmed_minutes_do_not_change_afterwards() {
    let (srv, _admin, budi) = demo_with_proctor().await;
    let _p = sit(&srv, 2, &srv.logins[0], &srv.token).await;
    let path = format!("/admin/sesi/{S1}/berita-acara");
    let r = budi
        .post(&path, &[("notes", "Selesai."), ("confirm", "1")])
        .await;
    if r.status == 303 {
        // Accepted while running: then the document must be frozen from here on.
        let at_confirm = budi.get(&format!("{path}?format=csv")).await.text();
        budi.act_ok(S1, &[("do", "pause"), ("reason", "listrik padam")])
            .await;
        budi.act_ok(S1, &[("do", "resume")]).await;
        budi.act_ok(S1, &[("do", "close_force")]).await;
        let later = budi.get(&format!("{path}?format=csv")).await.text();
        assert_eq!(later, at_confirm, "the confirmed minutes changed");
    } else {
        // Or refused until the session is closed.
        assert_eq!(r.status, 409, "{}", r.text());
    }
}
