//! Real-browser tests of the participant pages: the `tuk` binary (`tuk demo`) driven
//! through headless Chromium by chromedriver (WebDriver, via `fantoccini`).
//!
//! Needs `chromium` and `chromedriver` on the PATH (Debian: `apt-get install chromium
//! chromium-driver`; CI installs them). Without them these tests FAIL with a message, on
//! purpose: a silent pass would hide that the page script was never exercised.
//!
//! Screenshots go to `target/browser-artifacts/`, also the page source and a screenshot of
//! whatever page a failing test was on.
//!
//! The tests run one at a time (a lock): each starts a server and a browser, and the lab
//! machines these pages target are slower than a CI runner anyway.

#[path = "common/chrome.rs"]
mod chrome;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, Locator};

use chrome::{
    artifacts, css, css_all, free_port, path, poll, run, screenshot, text, wait_path, wait_port,
};

// ---------------------------------------------------------------------------------------
// processes: the tuk server and chromedriver
// ---------------------------------------------------------------------------------------

/// One test at a time: two browsers and two servers on a 2-core runner only make
/// timeouts flaky.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

fn terminate(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// `tuk demo --port PORT --data DIR`, stopped (SIGTERM) on drop.
struct Server {
    child: Option<Child>,
    port: u16,
    data: PathBuf,
    /// Everything the server printed, for tokens and logins.
    out: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the demo; its log goes to `target/browser-artifacts/{name}-server.log`.
    fn start(name: &str, port: u16, data: &Path) -> Result<Server> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(artifacts().join(format!("{name}-server.log")))?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_tuk"))
            .args(["demo", "--port", &port.to_string(), "--data"])
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("spawn tuk demo")?;
        let stdout = child.stdout.take().context("tuk stdout")?;
        let out = Arc::new(Mutex::new(String::new()));
        let (tx, rx): (_, Receiver<()>) = mpsc::channel();
        let sink = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let ready = line.starts_with("press Ctrl-C");
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                s.push_str(&line);
                s.push('\n');
                drop(s);
                if ready {
                    let _ = tx.send(());
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            port,
            data: data.to_path_buf(),
            out,
        };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let printed = server.printed();
            server.stop();
            bail!("tuk demo did not become ready; it printed:\n{printed}");
        }
        ensure!(
            wait_port(port, Duration::from_secs(10)),
            "tuk demo does not listen on {port}"
        );
        Ok(server)
    }

    fn printed(&self) -> String {
        self.out.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The newest token the server printed (it rotates).
    fn token(&self) -> Result<String> {
        self.printed()
            .lines()
            .filter_map(|l| l.strip_prefix("token: "))
            .next_back()
            .map(|t| t.trim().to_string())
            .context("tuk demo printed no token")
    }

    /// Participant number and password of the `i`-th printed login.
    fn login(&self, i: usize) -> Result<(String, String)> {
        let out = self.printed();
        let line = out
            .lines()
            .filter_map(|l| l.strip_prefix("login: "))
            .nth(i)
            .context("tuk demo printed too few logins")?;
        let (n, p) = line.trim().split_once(' ').context("login line")?;
        Ok((n.to_string(), p.to_string()))
    }

    /// SIGTERM and wait, as systemd stops it.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------
// page helpers
// ---------------------------------------------------------------------------------------

async fn class_of(c: &Client, sel: &str) -> Result<String> {
    Ok(css(c, sel).await?.attr("class").await?.unwrap_or_default())
}

async fn wait_status(c: &Client, want: &str, limit: Duration) -> Result<()> {
    poll(&format!("#status = {want:?}"), limit, || async {
        Ok((text(c, "#status").await? == want).then_some(()))
    })
    .await
}

/// Presses one key as a user would (keydown/keyup on the focused element).
async fn press(c: &Client, key: char) -> Result<()> {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    c.perform_actions(keys).await?;
    Ok(())
}

/// Login card → token → confirmation → first question.
async fn log_in_and_start(c: &Client, s: &Server, who: usize, shots: bool) -> Result<()> {
    let (number, password) = s.login(who)?;
    c.goto(&format!("{}/", s.base())).await?;
    if shots {
        screenshot(c, "login").await?;
    }
    css(c, "#participant").await?.send_keys(&number).await?;
    css(c, "#password").await?.send_keys(&password).await?;
    css(c, "button.primary").await?.click().await?;
    wait_path(c, "/token").await?;
    css(c, "#token").await?.send_keys(&s.token()?).await?;
    if shots {
        screenshot(c, "token").await?;
    }
    css(c, "button.primary").await?.click().await?;
    wait_path(c, "/konfirmasi").await?;
    ensure!(
        c.source().await?.contains(&number),
        "the confirmation page shows the participant number"
    );
    css(c, "button.primary").await?.click().await?;
    wait_path(c, "/soal/1").await?;
    Ok(())
}

/// The outboxes the page script keeps in localStorage, as JSON.
async fn outbox(c: &Client) -> Result<String> {
    let v = c
        .execute(
            "var o = {}; for (var i = 0; i < localStorage.length; i++) { \
             var k = localStorage.key(i); if (k.indexOf('tuk.outbox.') === 0) { \
             o[k] = localStorage.getItem(k); } } return JSON.stringify(o);",
            vec![],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

/// Clicks the `i`-th option (0-based) by its label, as a user does.
async fn click_option(c: &Client, i: usize) -> Result<()> {
    let labels = css_all(c, "label.option").await?;
    labels
        .get(i)
        .with_context(|| format!("option {i} of {}", labels.len()))?
        .click()
        .await?;
    Ok(())
}

async fn option_checked(c: &Client, i: usize) -> Result<bool> {
    let inputs = css_all(c, "input[name=choice]").await?;
    Ok(inputs
        .get(i)
        .context("no such option")?
        .is_selected()
        .await?)
}

async fn grid_class(c: &Client, n: usize) -> Result<String> {
    class_of(c, &format!("nav.grid button[value=\"{n}\"]")).await
}

fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tuk-browser-")
        .tempdir()
        .expect("temp dir")
}

// ---------------------------------------------------------------------------------------
// the tests
// ---------------------------------------------------------------------------------------

/// The whole test with JavaScript on: autosave, keyboard, doubtful, the grid, the timer,
/// large text, finishing, the questionnaire and the score.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_test_with_javascript() {
    const NAME: &str = "whole_test_with_javascript";
    let _serial = serial().await;
    let dir = data_dir();
    let server = Server::start(NAME, free_port(), dir.path()).expect("start tuk demo");
    run(NAME, true, "1024,900", |c| async move {
        log_in_and_start(&c, &server, 0, true).await?;

        // The timer counts down from the server's remaining time.
        let t0 = text(&c, "#timer strong").await?;
        ensure!(
            t0.len() == 8 && t0.as_bytes()[2] == b':' && t0.starts_with("01:"),
            "timer shows HH:MM:SS of a 90-minute test: {t0:?}"
        );
        poll("the timer to tick", Duration::from_secs(5), || async {
            Ok((text(&c, "#timer strong").await? != t0).then_some(()))
        })
        .await?;

        // 1: a click saves at once.
        ensure!(
            text(&c, "#status").await?.is_empty(),
            "no status before a change"
        );
        click_option(&c, 1).await?;
        wait_status(&c, "tersimpan", Duration::from_secs(10)).await?;
        ensure!(
            class_of(&c, "label.option:nth-of-type(2)")
                .await?
                .contains("chosen"),
            "the chosen option is highlighted"
        );
        let g1 = grid_class(&c, 1).await?;
        ensure!(
            g1.contains("answered") && g1.contains("current"),
            "grid 1: {g1}"
        );

        // 2: by keyboard (right arrow to move, letter A to choose).
        press(&c, '\u{e014}').await?; // ArrowRight
        wait_path(&c, "/soal/2").await?;
        press(&c, 'a').await?;
        wait_status(&c, "tersimpan", Duration::from_secs(10)).await?;
        ensure!(option_checked(&c, 0).await?, "key A chose the first option");
        ensure!(grid_class(&c, 2).await?.contains("answered"));

        // 3: answered and marked doubtful.
        css(&c, ".actions button.primary").await?.click().await?;
        wait_path(&c, "/soal/3").await?;
        click_option(&c, 0).await?;
        css(&c, "label.doubt").await?.click().await?;
        wait_status(&c, "tersimpan", Duration::from_secs(10)).await?;
        ensure!(grid_class(&c, 3).await?.contains("doubtful"));

        // The grid jumps; the server's grid agrees with what the script showed.
        css(&c, "nav.grid button[value=\"10\"]")
            .await?
            .click()
            .await?;
        wait_path(&c, "/soal/10").await?;
        for (n, want) in [
            (1, "answered"),
            (2, "answered"),
            (3, "doubtful"),
            (4, "empty"),
        ] {
            let got = grid_class(&c, n).await?;
            ensure!(got.contains(want), "grid {n}: want {want}, got {got}");
        }
        ensure!(grid_class(&c, 10).await?.contains("current"));
        // Back to 2: the keyboard answer is really on the server.
        css(&c, "nav.grid button[value=\"2\"]")
            .await?
            .click()
            .await?;
        wait_path(&c, "/soal/2").await?;
        ensure!(option_checked(&c, 0).await?, "item 2 kept its answer");
        css(&c, "nav.grid button[value=\"10\"]")
            .await?
            .click()
            .await?;
        wait_path(&c, "/soal/10").await?;
        click_option(&c, 2).await?;
        wait_status(&c, "tersimpan", Duration::from_secs(10)).await?;
        screenshot(&c, "question").await?;

        // Large text (a cookie; works without the script too): the switch shows its state.
        let link = css(&c, "header .prefs button[value=\"font-large\"]").await?;
        ensure!(link.attr("aria-pressed").await?.as_deref() == Some("false"));
        link.click().await?;
        poll("large text", Duration::from_secs(10), || async {
            Ok(class_of(&c, "body").await?.contains("large").then_some(()))
        })
        .await?;
        ensure!(path(&c).await? == "/soal/10");
        screenshot(&c, "question-large").await?;
        ensure!(
            css(&c, "header .prefs button[value=\"font-large\"]")
                .await?
                .attr("aria-pressed")
                .await?
                .as_deref()
                == Some("true"),
            "the large-text switch shows it is on"
        );
        css(&c, "header .prefs button[value=\"font-normal\"]")
            .await?
            .click()
            .await?;
        poll("normal text", Duration::from_secs(10), || async {
            Ok((!class_of(&c, "body").await?.contains("large")).then_some(()))
        })
        .await?;
        // High contrast, and back.
        for want in [true, false] {
            css(&c, "header .prefs button[value^=\"contrast-\"]")
                .await?
                .click()
                .await?;
            poll("the contrast switch", Duration::from_secs(10), || async {
                Ok((class_of(&c, "body").await?.contains("contrast") == want).then_some(()))
            })
            .await?;
            if want {
                screenshot(&c, "question-contrast").await?;
            }
        }

        // Finish: the confirmation lists unanswered and doubtful items.
        css(&c, ".actions button.finish").await?.click().await?;
        wait_path(&c, "/selesai").await?;
        let page = css(&c, "main").await?.text().await?;
        ensure!(
            page.contains("(56)") && page.contains("(1)"),
            "56 unanswered, 1 doubtful: {page}"
        );
        screenshot(&c, "finish").await?;
        css(&c, "form[action=\"/selesai\"] button")
            .await?
            .click()
            .await?;
        wait_path(&c, "/kuesioner").await?;

        // The questionnaire: one choice per scale question, one open answer.
        for fs in css_all(&c, "fieldset.scale").await? {
            fs.find(Locator::Css("label.option")).await?.click().await?;
        }
        if let Some(t) = css_all(&c, "textarea").await?.first() {
            t.send_keys("Materi sesuai dengan kebutuhan di kelas.")
                .await?;
        }
        css(&c, "form[action=\"/kuesioner\"] button.primary")
            .await?
            .click()
            .await?;
        wait_path(&c, "/hasil").await?;
        let score = text(&c, "#score").await?;
        // Indonesian pages write the decimal comma (4,55).
        let v: f64 = score
            .replace(',', ".")
            .parse()
            .map_err(|_| anyhow!("score {score:?} is a number"))?;
        ensure!((0.0..=100.0).contains(&v), "score {v} in 0..100");
        screenshot(&c, "result").await?;
        Ok(())
    })
    .await;
}

/// The server dies while a participant answers: the answer waits in the browser and
/// reaches the server once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_survives_server_restart() {
    const NAME: &str = "answer_survives_server_restart";
    let _serial = serial().await;
    let dir = data_dir();
    let port = free_port();
    let mut server = Server::start(NAME, port, dir.path()).expect("start tuk demo");
    run(NAME, true, "1024,900", |c| async move {
        log_in_and_start(&c, &server, 1, false).await?;
        css(&c, ".actions button.primary").await?.click().await?;
        wait_path(&c, "/soal/2").await?;

        server.stop();
        ensure!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the server is down"
        );
        click_option(&c, 1).await?;
        poll(
            "#status to say unsaved",
            Duration::from_secs(10),
            || async {
                Ok(text(&c, "#status")
                    .await?
                    .starts_with("belum tersimpan")
                    .then_some(()))
            },
        )
        .await?;
        ensure!(
            grid_class(&c, 2).await?.contains("answered"),
            "grid updated at once"
        );
        let kept = outbox(&c).await?;
        ensure!(kept.contains("choice"), "kept in localStorage: {kept}");
        // Let the retries back off for a while, as a real outage would.
        tokio::time::sleep(Duration::from_secs(4)).await;

        let started = Instant::now();
        let server = Server::start(NAME, port, &server.data).context("restart tuk demo")?;
        wait_status(&c, "tersimpan", Duration::from_secs(40)).await?;
        eprintln!(
            "answer delivered {:.1} s after the restart began",
            started.elapsed().as_secs_f64()
        );

        // Nothing left in the outbox, and reloaded from the server the page shows it.
        let left = outbox(&c).await?;
        ensure!(!left.contains("choice"), "the outbox is empty: {left}");
        c.goto(&format!("{}/soal/2", server.base())).await?;
        wait_path(&c, "/soal/2").await?;
        ensure!(option_checked(&c, 1).await?, "the server has the answer");
        ensure!(grid_class(&c, 2).await?.contains("answered"));

        // Down again, and this time the participant moves on: the form post fails (the
        // browser shows its own error page), the answer waits in localStorage and the
        // next question page that loads sends it.
        let mut server = server;
        server.stop();
        click_option(&c, 2).await?;
        poll(
            "#status to say unsaved",
            Duration::from_secs(10),
            || async {
                Ok(text(&c, "#status")
                    .await?
                    .starts_with("belum tersimpan")
                    .then_some(()))
            },
        )
        .await?;
        css(&c, ".actions button.primary").await?.click().await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        ensure!(path(&c).await? != "/soal/3", "the post cannot have worked");
        let server = Server::start(NAME, port, &server.data).context("restart tuk demo")?;
        c.goto(&format!("{}/soal/1", server.base())).await?;
        wait_path(&c, "/soal/1").await?;
        wait_status(&c, "tersimpan", Duration::from_secs(20)).await?;
        let left = outbox(&c).await?;
        ensure!(!left.contains("choice"), "the outbox is empty: {left}");
        c.goto(&format!("{}/soal/2", server.base())).await?;
        wait_path(&c, "/soal/2").await?;
        ensure!(
            option_checked(&c, 2).await? && !option_checked(&c, 1).await?,
            "the server has the answer given while it was down"
        );
        Ok(())
    })
    .await;
}

/// The server is restored from a backup taken before the participant's last answers: the
/// browser still holds them as acknowledged and sends them again (docs/time.md, issue 12).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_gets_back_what_the_browser_had_acknowledged() {
    const NAME: &str = "restore_resend";
    let _serial = serial().await;
    let dir = data_dir();
    let port = free_port();
    let server = Server::start(NAME, port, dir.path()).expect("start tuk demo");
    let backup = dir.path().join("before-answers.tar");
    run(NAME, true, "1024,900", |c| async move {
        log_in_and_start(&c, &server, 2, false).await?;
        click_option(&c, 0).await?;
        wait_status(&c, "tersimpan", Duration::from_secs(20)).await?;
        // The 5-minute backup runs now: it holds question 1's answer only.
        let data = server.data.display().to_string();
        let out = Command::new(env!("CARGO_BIN_EXE_tuk"))
            .args(["backup", "--data", &data, "--out"])
            .arg(&backup)
            .output()?;
        ensure!(out.status.success(), "backup: {out:?}");
        // Two more answers, each acknowledged by the server.
        for (n, option) in [(2, 1), (3, 0)] {
            css(&c, ".actions button.primary").await?.click().await?;
            wait_path(&c, &format!("/soal/{n}")).await?;
            click_option(&c, option).await?;
            wait_status(&c, "tersimpan", Duration::from_secs(20)).await?;
        }
        // The server is lost and restored from the backup: answers 2 and 3 are gone there.
        let mut server = server;
        server.stop();
        let out = Command::new(env!("CARGO_BIN_EXE_tuk"))
            .args(["restore"])
            .arg(&backup)
            .args(["--data", &data])
            .output()?;
        ensure!(out.status.success(), "restore: {out:?}");
        let server = Server::start(NAME, port, &server.data).context("restart tuk demo")?;
        // The participant's next page load notices and sends them again.
        c.goto(&format!("{}/soal/1", server.base())).await?;
        wait_path(&c, "/soal/1").await?;
        poll("the re-sent answers", Duration::from_secs(30), || async {
            Ok((!outbox(&c).await?.contains("choice")).then_some(()))
        })
        .await?;
        for (n, option) in [(2, 1), (3, 0)] {
            c.goto(&format!("{}/soal/{n}", server.base())).await?;
            wait_path(&c, &format!("/soal/{n}")).await?;
            ensure!(
                option_checked(&c, option).await?,
                "question {n}: the server has the answer again"
            );
        }
        Ok(())
    })
    .await;
}

/// JavaScript off: the plain forms do everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_without_javascript() {
    const NAME: &str = "works_without_javascript";
    let _serial = serial().await;
    let dir = data_dir();
    let server = Server::start(NAME, free_port(), dir.path()).expect("start tuk demo");
    run(NAME, false, "1024,900", |c| async move {
        log_in_and_start(&c, &server, 2, false).await?;
        click_option(&c, 0).await?;
        // No script: nothing is sent and no status appears until the form is posted.
        tokio::time::sleep(Duration::from_millis(500)).await;
        ensure!(
            text(&c, "#status").await?.is_empty(),
            "the script did not run (JavaScript is off)"
        );
        ensure!(grid_class(&c, 1).await?.contains("empty"));
        css(&c, ".actions button.primary").await?.click().await?;
        wait_path(&c, "/soal/2").await?;
        let g1 = grid_class(&c, 1).await?;
        ensure!(g1.contains("answered"), "grid 1 after the form post: {g1}");
        // Back to 1: the choice is there.
        css(&c, "nav.grid button[value=\"1\"]")
            .await?
            .click()
            .await?;
        wait_path(&c, "/soal/1").await?;
        ensure!(option_checked(&c, 0).await?, "item 1 kept its answer");
        Ok(())
    })
    .await;
}
