//! The one web shell: the frame around every HTML page tuk serves (participant pages, the
//! console under `/admin`, `/cek` and the UPT's `/laporan`), and the one error page.
//!
//! The shell owns what every page has and nothing a feature decides: the `DOCTYPE`, the
//! page language, the `meta` lines (charset, viewport, referrer, refresh), the title's
//! format (`page — area`), the stylesheet and scripts (the content-hashed URLs of
//! [`super::assets`]), the header bar variants ([`Bar`]), the footer of staff pages, and the
//! error page ([`error_page`], [`refusal_page`]). Each feature keeps its page bodies beside
//! its handlers and frames them here:
//!
//! ```ignore
//! let frame = Frame::new(Area::Console, Lang::Id).bar(Bar::staff(s, CONSOLE_HOME, html! { "Akun" }));
//! http::html(StatusCode::OK, frame.page("Akun", body))
//! ```
//!
//! A refusal's HTTP status is decided in `refusal.rs` only and its words in `i18n::msg`;
//! the error page shows them under the area's heading with one way back.

use hyper::StatusCode;
use maud::{DOCTYPE, Markup, html};

use super::Staff;
use super::assets;
use super::http::{self, Resp};
use super::i18n::{Lang, msg, t};
use super::refusal::Refusal;
use crate::exam::Role;

/// Which part of tuk a page belongs to: decides the title's suffix, the page's own script
/// and the error page's heading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Area {
    /// The participant's pages (`/`, `/token`, `/soal/N`, …): `tuk.js`.
    Participant,
    /// The proctor and technician console under `/admin`: `tuk.js` (it marks the page as
    /// scripted; the board adds `console.js`).
    Console,
    /// The lab readiness check `/cek`: `cek.js`.
    Cek,
    /// The UPT's report pages under `/laporan`: no script.
    Upt,
}

/// Where the console's pages go back to: the session list.
pub(crate) const CONSOLE_HOME: (&str, &str) = ("/admin", "◀ Konsol");

impl Area {
    /// What follows the page's own title, after " — ".
    fn suffix(self, lang: Lang) -> &'static str {
        match self {
            Area::Participant => t(lang, "app"),
            Area::Console => "Konsol tuk",
            Area::Cek => "tuk",
            Area::Upt => "tuk UPT",
        }
    }

    /// The area's own script (at the end of the body), if any.
    fn script(self) -> Option<&'static str> {
        match self {
            Area::Participant | Area::Console => Some(assets::js_url()),
            Area::Cek => Some(CEK_JS_URL),
            Area::Upt => None,
        }
    }

    /// The heading of a refusal on the error page.
    fn error_heading(self, lang: Lang) -> &'static str {
        match self {
            Area::Console => "Konsol pengawas",
            Area::Participant | Area::Cek | Area::Upt => t(lang, "error_title"),
        }
    }
}

/// The lab check's script (served by `cek.rs`, ES5).
pub(crate) const CEK_JS_URL: &str = "/cek/cek.js";

/// The logged-in staff member a staff bar names, and how they log out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Who<'a> {
    /// The login name.
    pub(crate) name: &'a str,
    /// What they are, in words (`admin`, `pengawas`, `staf UPT`).
    pub(crate) role: &'a str,
    /// Where the *Keluar* button posts.
    pub(crate) logout: &'a str,
    /// The login's CSRF token, sent with the logout.
    pub(crate) csrf: &'a str,
}

impl<'a> Who<'a> {
    /// A console login (`/admin`).
    pub(crate) fn console(s: &'a Staff) -> Who<'a> {
        Who {
            name: &s.name,
            role: match s.role {
                Role::Admin => "admin",
                Role::Proctor => "pengawas",
            },
            logout: "/admin/keluar",
            csrf: &s.csrf,
        }
    }
}

/// The bar at the top of a page.
pub(crate) enum Bar<'a> {
    /// No bar (login pages, error pages, the projector's token page).
    None,
    /// Just what the page is (the public `/cek` pages).
    Label(&'a str),
    /// A participant's: who (name and number), the time left (ms, and whether the session
    /// is paused; `tuk.js` counts it down), and the page's tools (text size and contrast).
    Participant {
        who: String,
        timer: Option<(i64, bool)>,
        tools: Option<Markup>,
    },
    /// A staff page's: a way back (`href`, label), what the page is about (`console.js`
    /// rewrites this `.who` on the board), the page's tools, then who is logged in with
    /// their role and the *Keluar* button. Without a label (the console's home) the `.who`
    /// is the staff member.
    Staff {
        back: Option<(&'a str, &'a str)>,
        label: Option<Markup>,
        tools: Option<Markup>,
        who: Who<'a>,
    },
    /// Above an A4 printable, hidden when printed: back to the board (this `href`),
    /// *Cetak* (the page's print script; Ctrl+P without JavaScript) and the same sheet as
    /// XLSX and CSV. The printables' stylesheet and script are the frame's [`Frame::style`]
    /// and [`Frame::script`].
    Print(&'a str),
}

impl<'a> Bar<'a> {
    /// A console page's bar: back, the page's label, the staff member.
    pub(crate) fn staff(s: &'a Staff, back: (&'a str, &'a str), label: Markup) -> Bar<'a> {
        Bar::Staff {
            back: Some(back),
            label: Some(label),
            tools: None,
            who: Who::console(s),
        }
    }
}

/// How a page reloads itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refresh {
    Never,
    /// Every N seconds (the projector's token page).
    Every(u32),
    /// Every N seconds when JavaScript is off (the board; with it, events update it).
    WithoutScript(u32),
}

/// How one page is framed: its area and language, its bar, and what it adds to the head.
pub(crate) struct Frame<'a> {
    area: Area,
    lang: Lang,
    bar: Bar<'a>,
    body_class: String,
    styles: Vec<&'a str>,
    scripts: Vec<&'a str>,
    refresh: Refresh,
}

impl<'a> Frame<'a> {
    /// A frame without a bar. Console and UPT pages are Indonesian ([`Lang::Id`]); the
    /// participant pages and `/cek` follow the page's language switch.
    pub(crate) fn new(area: Area, lang: Lang) -> Frame<'a> {
        Frame {
            area,
            lang,
            bar: Bar::None,
            body_class: String::new(),
            styles: Vec::new(),
            scripts: Vec::new(),
            refresh: Refresh::Never,
        }
    }

    pub(crate) fn bar(mut self, bar: Bar<'a>) -> Frame<'a> {
        self.bar = bar;
        self
    }

    /// Classes of `<body>` (the participant's text size and contrast).
    pub(crate) fn body_class(mut self, class: String) -> Frame<'a> {
        self.body_class = class;
        self
    }

    /// One more stylesheet, after `tuk.css`.
    pub(crate) fn style(mut self, url: &'a str) -> Frame<'a> {
        self.styles.push(url);
        self
    }

    /// One more script, after the area's own, at the end of the body.
    pub(crate) fn script(mut self, url: &'a str) -> Frame<'a> {
        self.scripts.push(url);
        self
    }

    pub(crate) fn refresh(mut self, refresh: Refresh) -> Frame<'a> {
        self.refresh = refresh;
        self
    }

    /// The whole page: `title` (shown as `title — area`) around the feature's `body`.
    pub(crate) fn page(self, title: &str, body: Markup) -> Markup {
        let lang = self.lang;
        let footer = matches!(self.bar, Bar::Staff { .. });
        html! {
            (DOCTYPE)
            html lang=(lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    // Same as the `Referrer-Policy` header, for browsers that only read the
                    // meta: with `no-referrer` they send `Origin: null` on form POSTs, which
                    // the same-origin check refuses; `same-origin` keeps the real Origin on
                    // our own forms and still sends nothing to other sites.
                    meta name="referrer" content="same-origin";
                    @match self.refresh {
                        Refresh::Never => {}
                        Refresh::Every(s) => { meta http-equiv="refresh" content=(s); }
                        Refresh::WithoutScript(s) => { noscript { meta http-equiv="refresh" content=(s); } }
                    }
                    title { (title) " — " (self.area.suffix(lang)) }
                    link rel="stylesheet" href=(assets::css_url());
                    @for url in &self.styles { link rel="stylesheet" href=(url); }
                }
                body class=[(!self.body_class.is_empty()).then_some(&self.body_class)] {
                    (bar(&self.bar, lang))
                    (body)
                    @if footer {
                        footer.foot.noprint { "tuk " (env!("CARGO_PKG_VERSION")) }
                    }
                    @if let Some(url) = self.area.script() { script src=(url) {} }
                    @for url in &self.scripts { script src=(url) {} }
                }
            }
        }
    }
}

/// The time left as `hh:mm:ss` (negative counts as zero).
pub(crate) fn clock(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn bar(bar: &Bar, lang: Lang) -> Markup {
    match bar {
        Bar::None => html! {},
        Bar::Label(label) => html! { header.bar { span { (label) } } },
        Bar::Participant { who, timer, tools } => html! {
            header.bar {
                span.who { (who) }
                @if let Some((remaining, paused)) = timer {
                    span #timer data-remaining=(remaining) data-paused=(paused) { (t(lang, "remaining")) ": " strong { (clock(*remaining)) } }
                }
                @if let Some(tools) = tools { (tools) }
            }
        },
        Bar::Staff {
            back,
            label,
            tools,
            who,
        } => html! {
            header.bar {
                @if let Some((href, text)) = back { a href=(href) { (text) } }
                @if let Some(label) = label {
                    span.who { (label) }
                    @if let Some(tools) = tools { (tools) }
                    span.staff { (who.name) " (" (who.role) ")" }
                } @else {
                    span.who { (who.name) " (" (who.role) ")" }
                    @if let Some(tools) = tools { (tools) }
                }
                form.inline method="post" action=(who.logout) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    button type="submit" { "Keluar" }
                }
            }
        },
        Bar::Print(back) => html! {
            header.bar.noprint {
                a href=(back) { "◀ Kembali ke papan sesi" }
                span {
                    button type="button" data-print="1" { "Cetak" }
                    " (atau Ctrl+P) "
                    " Unduh: " a href="?format=xlsx" { "Excel (XLSX)" } " · "
                    a href="?format=csv-excel" { "CSV untuk Excel" } " · "
                    a href="?format=csv" { "CSV" }
                }
            }
        },
    }
}

/// What an error page says: a heading, the message, and the one way back.
pub(crate) struct Problem<'a> {
    pub(crate) heading: &'a str,
    pub(crate) message: &'a str,
    pub(crate) back: &'a str,
    pub(crate) back_label: &'a str,
}

/// The one error page of every area: the heading (also the title), the message as an
/// alert, and a button back; answered with `status`.
pub(crate) fn error_page<'a>(frame: Frame<'a>, status: StatusCode, p: Problem<'a>) -> Resp {
    http::html(status, problem(frame, p))
}

fn problem<'a>(frame: Frame<'a>, p: Problem<'a>) -> Markup {
    let back = html! { p { a.button href=(p.back) { (p.back_label) } } };
    boxed(frame, p.heading, Some(p.message), back)
}

/// A page of one centred box: the heading (also the title), an alert if any, the rest.
fn boxed(frame: Frame, heading: &str, alert: Option<&str>, rest: Markup) -> Markup {
    let body = html! {
        main.box {
            h1 { (heading) }
            @if let Some(a) = alert { p.error role="alert" { (a) } }
            (rest)
        }
    };
    frame.page(heading, body)
}

/// A refusal on the error page: its status from `refusal.rs`, its words from `i18n::msg`
/// in the frame's language, under the area's heading, with a button back to `back`.
pub(crate) fn refusal_page(frame: Frame, r: Refusal, back: &str) -> Resp {
    http::html(r.status_code(), refusal(frame, r, back))
}

fn refusal(frame: Frame, r: Refusal, back: &str) -> Markup {
    let lang = frame.lang;
    let heading = frame.area.error_heading(lang);
    let p = Problem {
        heading,
        message: msg(lang, r.code),
        back,
        back_label: t(lang, "back"),
    };
    problem(frame, p)
}

/// What a staff login page says (the console's `/admin` and the UPT's `/laporan`).
pub(crate) struct Login<'a> {
    /// The heading, also the title.
    pub(crate) heading: &'a str,
    /// Why the last try failed, in words, if it did.
    pub(crate) error: Option<&'a str>,
    /// Where the form posts (`user`, `password`).
    pub(crate) action: &'a str,
    /// Below the form (who makes the accounts).
    pub(crate) hint: Markup,
}

/// The one staff login page: heading, the last try's error, name and password, *Masuk*.
pub(crate) fn login_page<'a>(frame: Frame<'a>, status: StatusCode, l: Login<'a>) -> Resp {
    http::html(status, login(frame, l))
}

fn login<'a>(frame: Frame<'a>, l: Login<'a>) -> Markup {
    let form = html! {
        form method="post" action=(l.action) {
            label for="user" { "Nama pengguna" }
            input #user name="user" autocomplete="username" required autofocus;
            label for="password" { "Kata sandi" }
            input #password name="password" type="password" autocomplete="current-password" required;
            button.primary type="submit" { "Masuk" }
        }
        (l.hint)
    };
    boxed(frame, l.heading, l.error, form)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff() -> Staff {
        Staff {
            name: "budi".into(),
            role: Role::Proctor,
            csrf: "c5rf".into(),
        }
    }

    fn frames(s: &Staff) -> Vec<(Area, Frame<'_>)> {
        vec![
            (
                Area::Participant,
                Frame::new(Area::Participant, Lang::Id).bar(Bar::Participant {
                    who: "Sari · 001".into(),
                    timer: Some((61_000, false)),
                    tools: None,
                }),
            ),
            (Area::Console, Frame::new(Area::Console, Lang::Id)),
            (
                Area::Console,
                Frame::new(Area::Console, Lang::Id).bar(Bar::staff(
                    s,
                    CONSOLE_HOME,
                    html! { "Akun" },
                )),
            ),
            (
                Area::Console,
                Frame::new(Area::Console, Lang::Id).bar(Bar::Print("/admin/sesi/p/S1")),
            ),
            (
                Area::Cek,
                Frame::new(Area::Cek, Lang::Id).bar(Bar::Label("Cek kesiapan lab")),
            ),
            (Area::Upt, Frame::new(Area::Upt, Lang::Id)),
        ]
    }

    /// Every frame: Indonesian, viewport, charset, the hashed stylesheet, the title's
    /// suffix, and no heading of its own (the page's body has the one `h1`).
    #[test]
    fn every_frame_is_indonesian_with_a_viewport_and_one_h1() {
        let s = staff();
        for (area, f) in frames(&s) {
            let page = f
                .page("Judul", html! { main { h1 { "Judul" } } })
                .into_string();
            assert!(
                page.starts_with("<!DOCTYPE html><html lang=\"id\">"),
                "{page}"
            );
            assert!(page.contains(r#"<meta charset="utf-8">"#), "{page}");
            assert!(
                page.contains(
                    r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
                ),
                "{page}"
            );
            assert!(page.contains(assets::css_url()), "{page}");
            assert_eq!(page.matches("<h1").count(), 1, "{page}");
            assert_eq!(page.matches("<title>").count(), 1, "{page}");
            assert!(
                page.contains(&format!("<title>Judul — {}</title>", area.suffix(Lang::Id))),
                "{page}"
            );
        }
        let en = Frame::new(Area::Participant, Lang::En).page("Login", html! {});
        assert!(en.into_string().contains("<html lang=\"en\">"));
    }

    /// The staff bar names the member and role and logs out with the CSRF token; the
    /// footer (the version) is on staff pages only.
    #[test]
    fn staff_bar_has_role_logout_and_footer() {
        let s = staff();
        let page = Frame::new(Area::Console, Lang::Id)
            .bar(Bar::staff(&s, CONSOLE_HOME, html! { "Akun" }))
            .page("Akun", html! {})
            .into_string();
        assert!(page.contains("budi (pengawas)"), "{page}");
        assert!(page.contains(r#"action="/admin/keluar""#), "{page}");
        assert!(page.contains(r#"name="csrf" value="c5rf""#), "{page}");
        assert!(page.contains("<footer"), "{page}");
        let public = Frame::new(Area::Cek, Lang::Id).page("Cek", html! {});
        assert!(!public.into_string().contains("<footer"));
    }

    /// The console's home: no page label, so the `.who` is the staff member.
    #[test]
    fn staff_bar_without_label_names_the_member_in_who() {
        let s = staff();
        let bar = Bar::Staff {
            back: None,
            label: None,
            tools: None,
            who: Who::console(&s),
        };
        let page = Frame::new(Area::Console, Lang::Id)
            .bar(bar)
            .page("Konsol", html! {})
            .into_string();
        assert!(
            page.contains(r#"<span class="who">budi (pengawas)</span>"#),
            "{page}"
        );
        assert!(!page.contains(r#"class="staff""#), "{page}");
    }

    /// The one staff login page: one heading, the error as an alert, the form's target.
    #[test]
    fn login_page_posts_name_and_password() {
        let l = Login {
            heading: "Masuk Pengawas / Admin",
            error: Some("Nama atau kata sandi salah."),
            action: "/admin/masuk",
            hint: html! {},
        };
        let page = login(Frame::new(Area::Console, Lang::Id), l).into_string();
        assert_eq!(page.matches("<h1").count(), 1, "{page}");
        assert!(
            page.contains(r#"role="alert">Nama atau kata sandi salah.<"#),
            "{page}"
        );
        assert!(
            page.contains(r#"<form method="post" action="/admin/masuk">"#),
            "{page}"
        );
        assert!(page.contains(r#"name="user""#) && page.contains(r#"name="password""#));
    }

    /// The error page answers with the refusal's status (from `refusal.rs`), shows its
    /// words and its heading once, and offers one way back.
    #[test]
    fn error_page_carries_the_status_and_the_words() {
        let r = Refusal::from(crate::exam::Refused::SessionClosed);
        assert_eq!(
            refusal_page(Frame::new(Area::Console, Lang::Id), r, "/admin").status(),
            StatusCode::CONFLICT
        );
        for (area, lang, heading) in [
            (Area::Participant, Lang::Id, "Terjadi Masalah"),
            (Area::Participant, Lang::En, "Something went wrong"),
            (Area::Console, Lang::Id, "Konsol pengawas"),
            (Area::Cek, Lang::Id, "Terjadi Masalah"),
        ] {
            let page = refusal(Frame::new(area, lang), r, "/back").into_string();
            assert!(page.contains(&format!("<h1>{heading}</h1>")), "{page}");
            assert!(page.contains(&format!("<title>{heading} — ")), "{page}");
            assert!(page.contains(msg(lang, r.code)), "{page}");
            assert!(page.contains(r#"role="alert""#), "{page}");
            assert!(page.contains(r#"href="/back""#), "{page}");
            assert_eq!(page.matches("<h1").count(), 1, "{page}");
        }
        let resp = error_page(
            Frame::new(Area::Upt, Lang::Id),
            StatusCode::NOT_FOUND,
            Problem {
                heading: "Halaman tidak ada",
                message: "Laporan ada di /laporan.",
                back: "/laporan",
                back_label: "Kembali",
            },
        );
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn clock_counts_down_in_hours_minutes_seconds() {
        assert_eq!(clock(3_723_000), "01:02:03");
        assert_eq!(clock(-5), "00:00:00");
    }
}
