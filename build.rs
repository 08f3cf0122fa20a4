//! Embeds `api/openapi.json` and `api/help.json` compact: the checked-in
//! copies are pretty-printed to be read and diffed, the module carries them
//! without their whitespace (129 KB -> 50 KB of read-only data; issue 11).

use std::{env, fs, path::Path};

/// JSON text without the whitespace between tokens (strings left as they are).
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

fn main() {
    let out = env::var("OUT_DIR").expect("OUT_DIR");
    for file in ["openapi.json", "help.json"] {
        let source = format!("api/{file}");
        println!("cargo:rerun-if-changed={source}");
        let text = fs::read_to_string(&source).expect("api/*.json");
        fs::write(Path::new(&out).join(file), compact(&text)).expect("OUT_DIR");
    }
}
