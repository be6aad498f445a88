//! Chromium through chromedriver (WebDriver, fantoccini) for the browser tests, and the page
//! helpers they share. Included by `tests/browser.rs`, `tests/console_browser.rs`,
//! `tests/console_day.rs` and `tests/paperwork.rs` with
//! `#[path = "common/chrome.rs"] mod chrome;` (not from `common/mod.rs`, so the other test
//! crates do not build fantoccini code they never use).

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

pub fn wait_port(port: u16, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

/// `target/browser-artifacts/`: screenshots, and what a failing test leaves behind.
pub fn artifacts() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts");
    std::fs::create_dir_all(&d).expect("create target/browser-artifacts");
    d
}

/// A chromedriver process and a browser session in it; both end on drop (the browser
/// with chromedriver; call `quit` first when possible).
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Headless Chromium, in Bahasa Indonesia like a lab PC, with a window of `window`
    /// (`"1024,900"`), JavaScript on or off.
    pub async fn launch(javascript: bool, window: &str) -> Result<Browser> {
        Self::launch_lang(javascript, window, "id-ID,id").await
    }

    /// [`Browser::launch`] with another browser language (`"en-US,en"`: an English lab PC).
    pub async fn launch_lang(javascript: bool, window: &str, languages: &str) -> Result<Browser> {
        let (Some(driver_bin), Some(chrome_bin)) = (
            on_path(&["chromedriver"]),
            on_path(&["chromium", "chromium-browser", "google-chrome"]),
        ) else {
            panic!(
                "the browser tests need chromium and chromedriver on the PATH \
                 (Debian/Ubuntu: `apt-get install chromium chromium-driver`; CI installs them). \
                 They fail rather than pass silently."
            );
        };
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn chromedriver")?;
        let mut guard = DriverGuard(Some(driver));
        ensure!(
            wait_port(port, Duration::from_secs(20)),
            "chromedriver does not listen on {port}"
        );
        let profile = tempfile::Builder::new().prefix("tuk-chrome-").tempdir()?;
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={window}"),
            format!(
                "--lang={}",
                languages.split(['-', ',']).next().unwrap_or("id")
            ),
        ];
        if !javascript {
            args.push("--blink-settings=scriptEnabled=false".into());
        }
        let caps = json!({
            "browserName": "chrome",
            // The UPT receiver's test certificate is self-signed (made by rcgen).
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "args": args,
                "binary": chrome_bin,
                // An Indonesian lab PC: the pages come in Bahasa Indonesia.
                "prefs": {"intl.accept_languages": languages},
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("start a chromium session through chromedriver")?;
        Ok(Browser {
            client,
            driver: guard.0.take().expect("driver"),
            _profile: profile,
        })
    }

    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
        // Drop ends chromedriver.
    }
}

/// Runs a test body in a fresh browser; on failure leaves a screenshot and the page source
/// in `target/browser-artifacts/`, then panics.
pub async fn run<F, Fut>(name: &str, javascript: bool, window: &str, body: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let browser = Browser::launch(javascript, window)
        .await
        .expect("launch the browser");
    let r = body(browser.client.clone()).await;
    if let Err(e) = &r {
        dump(&browser.client, name).await;
        browser.quit().await;
        panic!("{name}: {e:#}");
    }
    browser.quit().await;
}

// ---------------------------------------------------------------------------------------
// page helpers
// ---------------------------------------------------------------------------------------

/// Calls `f` every 200 ms until it yields a value, or fails after `limit`.
pub async fn poll<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let end = Instant::now() + limit;
    let mut last = String::new();
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!(" (last error: {e:#})"),
        }
        if Instant::now() > end {
            bail!("timed out after {limit:?} waiting for {what}{last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn css(c: &Client, sel: &str) -> Result<Element> {
    c.find(Locator::Css(sel))
        .await
        .with_context(|| format!("find {sel}"))
}

pub async fn css_all(c: &Client, sel: &str) -> Result<Vec<Element>> {
    c.find_all(Locator::Css(sel))
        .await
        .with_context(|| format!("find all {sel}"))
}

pub async fn path(c: &Client) -> Result<String> {
    Ok(c.current_url().await?.path().to_string())
}

pub async fn wait_path(c: &Client, want: &str) -> Result<()> {
    poll(
        &format!("the page {want}"),
        Duration::from_secs(15),
        || async { Ok((path(c).await? == want).then_some(())) },
    )
    .await
}

pub async fn text(c: &Client, sel: &str) -> Result<String> {
    Ok(css(c, sel).await?.text().await?.trim().to_string())
}

pub async fn screenshot(c: &Client, name: &str) -> Result<PathBuf> {
    let png = c.screenshot().await?;
    let p = artifacts().join(format!("{name}.png"));
    std::fs::write(&p, png)?;
    Ok(p)
}

/// What a failing test leaves behind.
pub async fn dump(c: &Client, name: &str) {
    let _ = screenshot(c, &format!("FAILED-{name}")).await;
    if let Ok(src) = c.source().await {
        let _ = std::fs::write(artifacts().join(format!("FAILED-{name}.html")), src);
    }
    if let Ok(u) = c.current_url().await {
        eprintln!("{name}: the browser was on {u}");
    }
}

// ---------------------------------------------------------------------------------------
// the console pages (tests/console_browser.rs, tests/console_day.rs)
// ---------------------------------------------------------------------------------------

/// One browser test at a time: two browsers and servers on 2 cores make timeouts flaky.
/// Each test runs on its own runtime, so holding this std lock across `.await` only makes
/// the other tests' threads wait, which is the point.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The button with exactly this label.
pub async fn button(c: &Client, label: &str) -> Result<Element> {
    c.find(Locator::XPath(&format!(
        "//button[normalize-space()='{label}']"
    )))
    .await
    .with_context(|| format!("find the button {label:?}"))
}

/// Clicks something that navigates (a form button, a link) and waits until the new page
/// has replaced the old one and finished loading.
pub async fn click_nav(c: &Client, el: Element) -> Result<()> {
    let old = c.find(Locator::Css("html")).await?;
    el.click().await?;
    poll("the next page", Duration::from_secs(15), || async {
        Ok(old.tag_name().await.is_err().then_some(()))
    })
    .await?;
    poll("the page to load", Duration::from_secs(15), || async {
        let state = c.execute("return document.readyState", vec![]).await?;
        Ok((state == "complete").then_some(()))
    })
    .await
}

/// The link with exactly this text.
pub async fn link(c: &Client, label: &str) -> Result<Element> {
    c.find(Locator::XPath(&format!("//a[normalize-space()='{label}']")))
        .await
        .with_context(|| format!("find the link {label:?}"))
}

pub async fn wait_text(c: &Client, sel: &str, want: &str) -> Result<()> {
    poll(
        &format!("{sel} to contain {want:?}"),
        Duration::from_secs(20),
        || async { Ok(text(c, sel).await?.contains(want).then_some(())) },
    )
    .await
}

/// Logs in on /admin through the form.
pub async fn staff_login(c: &Client, base: &str, user: &str, password: &str) -> Result<()> {
    c.goto(&format!("{base}/admin")).await?;
    css(c, "#user").await?.send_keys(user).await?;
    css(c, "#password").await?.send_keys(password).await?;
    click_nav(c, css(c, "form[action=\"/admin/masuk\"] button").await?).await?;
    wait_text(c, "header.bar .who", user).await
}
