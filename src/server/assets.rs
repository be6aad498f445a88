//! The stylesheet and script, compiled into the binary: nothing is fetched from the
//! internet at run time. URLs carry a content hash so browsers cache them forever and
//! still pick up a new version.

use std::sync::OnceLock;

use super::http::{self, Resp};

const CSS: &str = include_str!("assets/tuk.css");
const JS: &str = include_str!("assets/tuk.js");
const CONSOLE_JS: &str = include_str!("assets/console.js");

fn short_hash(s: &str) -> String {
    blake3::hash(s.as_bytes()).to_hex()[..12].to_string()
}

pub(crate) fn css_url() -> &'static str {
    static U: OnceLock<String> = OnceLock::new();
    U.get_or_init(|| format!("/static/tuk.{}.css", short_hash(CSS)))
}

pub(crate) fn js_url() -> &'static str {
    static U: OnceLock<String> = OnceLock::new();
    U.get_or_init(|| format!("/static/tuk.{}.js", short_hash(JS)))
}

pub(crate) fn console_js_url() -> &'static str {
    static U: OnceLock<String> = OnceLock::new();
    U.get_or_init(|| format!("/static/console.{}.js", short_hash(CONSOLE_JS)))
}

pub(crate) fn serve(name: &str) -> Resp {
    if name.starts_with("console.") && name.ends_with(".js") {
        http::asset(
            "application/javascript; charset=utf-8",
            CONSOLE_JS.as_bytes(),
        )
    } else if name.ends_with(".css") {
        http::asset("text/css; charset=utf-8", CSS.as_bytes())
    } else if name.ends_with(".js") {
        http::asset("application/javascript; charset=utf-8", JS.as_bytes())
    } else {
        http::response(hyper::StatusCode::NOT_FOUND, "text/plain", "not found")
    }
}
